import t from 'tap';
import { fillRandom, randomBuffer } from '../../../src/core/random-pool.js';
import { newId } from '../../../src/core/ids.js';

/** 16-byte chunks of `bytes` as hex, for distinctness checks. */
function chunks(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i + 16 <= bytes.length; i += 16) out.push(bytes.subarray(i, i + 16).toString('hex'));
  return out;
}

t.test('ok/fillRandom writes exactly the range asked for', async (t) => {
  const target = Buffer.alloc(64, 0xaa);
  fillRandom(target, 8, 40);
  t.ok(target.subarray(0, 8).every((b) => b === 0xaa), 'bytes before the range untouched');
  t.ok(target.subarray(40).every((b) => b === 0xaa), 'bytes after the range untouched');
  t.notOk(target.subarray(8, 40).every((b) => b === 0xaa), 'the range was written');
});

t.test('ok/draws never repeat, within a page, across refills and larger than a page', async (t) => {
  // 1,000 ids of 16 bytes and one 10,000-byte draw cross several 4 KiB page refills; a byte handed out
  // twice, or a wiped (zero) stretch handed out, shows up as a repeated 16-byte chunk.
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i += 1) seen.add(randomBuffer(16).toString('hex'));
  fillRandom(Buffer.alloc(4090)); // leaves a few bytes in the page, so the next draw spans a refill
  for (const chunk of chunks(randomBuffer(10_000))) seen.add(chunk);
  t.equal(seen.size, 1000 + 625);
  t.notOk(seen.has('00'.repeat(16)), 'no all-zero chunk');
});

t.test('ok/ids are base64url of the requested entropy and distinct', async (t) => {
  const ids = Array.from({ length: 500 }, () => newId());
  t.equal(new Set(ids).size, 500);
  t.ok(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id)), '16 bytes -> 22 base64url characters');
  t.match(newId(32), /^[A-Za-z0-9_-]{43}$/);
});
