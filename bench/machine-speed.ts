/**
 * A reference figure for the machine a bench ran on: P-256 ECDSA signatures per second on one core with
 * node:crypto. Benchmarks from different sessions' machines are only comparable next to such a figure
 * (and next to another server measured in the same run, as bench:acme does with pebble).
 */
import { generateKeyPairSync, sign } from 'node:crypto';

export function p256SignsPerSecond(durationMs = 300): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(256, 1);
  for (let i = 0; i < 200; i += 1) sign('sha256', data, privateKey); // warm-up
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (let i = 0; i < 50; i += 1) sign('sha256', data, privateKey);
    count += 50;
  }
  return Math.round((count * 1000) / (performance.now() - started));
}
