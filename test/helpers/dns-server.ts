import { createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { ipAddressBytes } from '../../src/va/reverse-dns-name.js';

/**
 * A tiny authoritative DNS server over UDP for tests (RFC 1035 §4). It answers TXT, A, AAAA and CAA from
 * maps it is given, NODATA (NOERROR, no answers) for a known name without records of the asked type,
 * and NXDOMAIN for unknown names. Enough for dns-01 and for resolving http-01 / tls-alpn-01 names
 * through CHANCERY_DNS_RESOLVERS; no compression in questions, no TCP, no EDNS.
 */
export interface DnsServer {
  port: number;
  /** "127.0.0.1:<port>", the form CHANCERY_DNS_RESOLVERS takes. */
  resolver: string;
  /** Replaces the TXT values of `name`; an empty list removes them. */
  setTxt(name: string, values: string[]): void;
  /** Sets the address of `name` (A for IPv4, AAAA for IPv6); undefined removes it. */
  setA(name: string, address: string | undefined): void;
  /**
   * Answers successive A/AAAA queries for `name` with these addresses in turn, the last one from then on
   * (DNS rebinding: a first answer that passes a check, then another). A query of the other family than the
   * next address gets NODATA and does not advance.
   */
  setAnswers(name: string, addresses: string[]): void;
  /** Replaces the CAA records of `name` (RFC 8659 §4.1: flags, tag, value); an empty list removes them. */
  setCaa(name: string, records: { flags?: number; tag: string; value: string }[]): void;
  /** Answers SERVFAIL for `name` (a broken zone), or normally again with `on` false. */
  setServfail(name: string, on?: boolean): void;
  /** Names the server receives queries for but never answers (to test resolver timeouts). */
  setSilent(name: string, silent?: boolean): void;
  /** Every question seen, as "TYPE name", for assertions. */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_TXT = 16;
const TYPE_AAAA = 28;
const TYPE_CAA = 257;
const TYPE_NAMES: Record<number, string> = { [TYPE_A]: 'A', [TYPE_TXT]: 'TXT', [TYPE_AAAA]: 'AAAA', [TYPE_CAA]: 'CAA' };
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** `suffixA`: every name ending in `suffix` has this address unless set otherwise (a load test's many names). */
export async function startDnsServer(options: { txt?: Map<string, string[]>; a?: Map<string, string>; suffixA?: { suffix: string; address: string } } = {}): Promise<DnsServer> {
  const txt = new Map<string, string[]>();
  const addresses = new Map<string, string>();
  const silent = new Set<string>();
  const sequences = new Map<string, string[]>();
  const caa = new Map<string, { flags?: number; tag: string; value: string }[]>();
  const servfail = new Set<string>();
  for (const [name, values] of options.txt ?? []) txt.set(normalize(name), values);
  for (const [name, address] of options.a ?? []) addresses.set(normalize(name), address);
  const queries: string[] = [];

  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    const response = answer(message);
    if (response) socket.send(response, remote.port, remote.address);
  });

  function answer(query: Buffer): Buffer | undefined {
    if (query.length < 12) return undefined;
    const id = query.readUInt16BE(0);
    const flags = query.readUInt16BE(2);
    if (flags & 0x8000) return undefined; // a response, not a query
    const header = (rcode: number, answers: number, questions = 1): Buffer => {
      const out = Buffer.alloc(12);
      out.writeUInt16BE(id, 0);
      // QR=1, opcode copied, AA=1, RD copied, RA=1.
      out.writeUInt16BE(0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 2);
      out.writeUInt16BE(questions, 4);
      out.writeUInt16BE(answers, 6);
      return out;
    };
    // Question: labels until a zero octet, then QTYPE and QCLASS.
    const labels: string[] = [];
    let offset = 12;
    for (;;) {
      const length = query[offset];
      if (length === undefined || length > 63) return header(RCODE_FORMERR, 0, 0);
      offset += 1;
      if (length === 0) break;
      labels.push(query.subarray(offset, offset + length).toString('latin1'));
      offset += length;
    }
    if (offset + 4 > query.length) return undefined;
    const qtype = query.readUInt16BE(offset);
    const question = query.subarray(12, offset + 4);
    const name = normalize(labels.join('.'));
    queries.push(`${TYPE_NAMES[qtype] ?? String(qtype)} ${name}`);
    if (silent.has(name)) return undefined;
    if (servfail.has(name)) return Buffer.concat([header(RCODE_SERVFAIL, 0), question]);

    const bySuffix = options.suffixA !== undefined && name.endsWith(options.suffixA.suffix) ? options.suffixA.address : undefined;
    const exists = txt.has(name) || addresses.has(name) || sequences.has(name) || caa.has(name) || bySuffix !== undefined;
    if (!exists) return Buffer.concat([header(RCODE_NXDOMAIN, 0), question]);

    const rdatas: { type: number; data: Buffer }[] = [];
    if (qtype === TYPE_TXT) {
      for (const value of txt.get(name) ?? []) rdatas.push({ type: TYPE_TXT, data: txtData(value) });
    }
    if (qtype === TYPE_CAA) {
      for (const record of caa.get(name) ?? []) {
        const tag = Buffer.from(record.tag, 'latin1');
        rdatas.push({ type: TYPE_CAA, data: Buffer.concat([Buffer.from([record.flags ?? 0, tag.length]), tag, Buffer.from(record.value, 'utf8')]) });
      }
    }
    const sequence = sequences.get(name);
    let address = addresses.get(name) ?? bySuffix;
    if (sequence !== undefined && sequence.length > 0) {
      address = sequence[0];
      const matches = (qtype === TYPE_A && isIPv4(address!)) || (qtype === TYPE_AAAA && isIPv6(address!));
      if (matches && sequence.length > 1) sequence.shift();
    }
    if (address !== undefined && ((qtype === TYPE_A && isIPv4(address)) || (qtype === TYPE_AAAA && isIPv6(address)))) {
      rdatas.push({ type: qtype, data: ipAddressBytes(address)! });
    }
    const records = rdatas.map(({ type, data }) => {
      const fixed = Buffer.alloc(12);
      fixed.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
      fixed.writeUInt16BE(type, 2);
      fixed.writeUInt16BE(1, 4); // class IN
      fixed.writeUInt32BE(0, 6); // TTL 0: tests change records between attempts
      fixed.writeUInt16BE(data.length, 10);
      return Buffer.concat([fixed, data]);
    });
    return Buffer.concat([header(0, records.length), question, ...records]);
  }

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;

  return {
    port,
    resolver: `127.0.0.1:${port}`,
    queries,
    setTxt(name, values) {
      if (values.length === 0) txt.delete(normalize(name));
      else txt.set(normalize(name), values);
    },
    setA(name, address) {
      if (address === undefined) addresses.delete(normalize(name));
      else addresses.set(normalize(name), address);
    },
    setAnswers(name, list) {
      sequences.set(normalize(name), [...list]);
    },
    setCaa(name, records) {
      if (records.length === 0) caa.delete(normalize(name));
      else caa.set(normalize(name), records);
    },
    setServfail(name, on = true) {
      if (on) servfail.add(normalize(name));
      else servfail.delete(normalize(name));
    },
    setSilent(name, on = true) {
      if (on) silent.add(normalize(name));
      else silent.delete(normalize(name));
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** TXT RDATA: one or more <length><bytes> character-strings of at most 255 bytes (RFC 1035 §3.3.14). */
function txtData(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}
