import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toPem } from '../../src/core/pem.js';

const execFileAsync = promisify(execFile);

/** openssl is the independent judge of PKI outputs. In CI a missing binary fails the run, never skips. */
export function requireOpenssl(): void {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('openssl is not installed: apt-get install openssl');
  }
}

export async function openssl(args: string[], input?: Buffer): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const child = execFileAsync('openssl', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (input) {
      child.child.stdin?.end(input);
    }
    const { stdout, stderr } = await child;
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

export async function writeTemp(name: string, content: string | Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-openssl-'));
  const file = join(dir, name);
  await writeFile(file, content);
  return file;
}

export async function certificateText(der: Uint8Array): Promise<string> {
  const file = await writeTemp('cert.pem', toPem(der));
  const { stdout, stderr, code } = await openssl(['x509', '-in', file, '-noout', '-text']);
  if (code !== 0) throw new Error(`openssl x509 failed: ${stderr}`);
  return stdout;
}

/** Makes a CSR with openssl req; returns DER. `key` is an openssl -newkey spec (ec:P-256 style via pkeyopt). */
export async function makeCsr(options: {
  keyType: 'ec-p256' | 'ec-p384' | 'rsa-1024' | 'rsa-2048' | 'ed25519';
  subject?: string;
  sans?: string[];
  extra?: string[];
}): Promise<{ der: Buffer; keyPem: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-csr-'));
  const keyFile = join(dir, 'key.pem');
  const csrFile = join(dir, 'csr.der');
  const keyArgs: Record<typeof options.keyType, string[]> = {
    'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    'rsa-1024': ['-newkey', 'rsa:1024'],
    'rsa-2048': ['-newkey', 'rsa:2048'],
    ed25519: ['-newkey', 'ed25519'],
  };
  const args = ['req', '-new', ...keyArgs[options.keyType], '-nodes', '-keyout', keyFile, '-outform', 'DER', '-out', csrFile];
  args.push('-subj', options.subject ?? '/');
  if (options.sans?.length) args.push('-addext', `subjectAltName=${options.sans.join(',')}`);
  args.push(...(options.extra ?? []));
  const { code, stderr } = await openssl(args);
  if (code !== 0) throw new Error(`openssl req failed: ${stderr}`);
  return { der: await readFile(csrFile), keyPem: await readFile(keyFile, 'utf8') };
}
