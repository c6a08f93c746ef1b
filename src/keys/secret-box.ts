import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { CaError } from '../core/errors.js';

/**
 * Encrypts small secrets the CA must read back (EAB HMAC keys, RFC 8555 §7.3.4: the server needs the key
 * to verify bindings, so it cannot store only a hash). AES-256-GCM under a key derived with scrypt from
 * the installation passphrase. Layout: version(1) | iv(12) | tag(16) | ciphertext.
 */
const VERSION = 1;

export class SecretBox {
  private readonly key: Buffer;

  constructor(passphrase: string) {
    this.key = scryptSync(passphrase, 'chancery/secret-box/v1', 32);
  }

  seal(plaintext: Uint8Array, context: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
  }

  /** `context` (e.g. the EAB kid) is bound as AAD so a sealed value cannot be moved to another row. */
  open(sealed: Uint8Array, context: string): Buffer {
    const data = Buffer.from(sealed);
    if (data[0] !== VERSION || data.length < 29) throw new CaError('serverInternal', 'sealed secret has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(1, 13));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(data.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(data.subarray(29)), decipher.final()]);
    } catch (cause) {
      throw new CaError('serverInternal', 'sealed secret cannot be opened: wrong passphrase?', { cause });
    }
  }
}
