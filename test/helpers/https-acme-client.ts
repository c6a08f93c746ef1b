import https from 'node:https';
import { signJws, type TestKey } from './acme-jws.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A minimal ACME client over real HTTPS for multi-process tests. Every URL it signs is under the shared
 * external base (CHANCERY_ACME_URL, as behind a load balancer), while `target(i)` chooses which server
 * process the i-th request is actually sent to — so a nonce from one process is spent at the other.
 */
export class HttpsAcmeClient {
  private nonce: string | undefined;
  private count = 0;
  readonly sentTo: string[] = [];
  kid: string | undefined;

  constructor(private readonly options: { base: string; targets: string[]; ca: string; key: TestKey }) {}

  /** RFC 8555 §8.1 key authorization for a challenge token. */
  keyAuthorization(token: string): string {
    return `${token}.${this.options.key.thumbprint}`;
  }

  private nextTarget(): string {
    const target = this.options.targets[this.count % this.options.targets.length]!;
    this.count += 1;
    this.sentTo.push(target);
    return target;
  }

  request(method: string, url: string, body?: string, contentType = 'application/jose+json'): Promise<HttpResponse> {
    const external = new URL(url);
    const target = new URL(this.nextTarget());
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          method,
          host: target.hostname,
          port: target.port,
          path: external.pathname + external.search,
          ca: this.options.ca,
          headers: body === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => {
            const nonce = response.headers['replay-nonce'];
            if (typeof nonce === 'string') this.nonce = nonce;
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  async newNonce(): Promise<string> {
    const response = await this.request('HEAD', `${this.options.base}/acme/new-nonce`);
    const nonce = response.headers['replay-nonce'];
    if (typeof nonce !== 'string') throw new Error(`no nonce (status ${response.status})`);
    return nonce;
  }

  /** POSTs a JWS signed with the client's key (kid once the account exists). Uses the last Replay-Nonce. */
  async post(url: string, payload: unknown): Promise<HttpResponse> {
    const nonce = this.nonce ?? (await this.newNonce());
    this.nonce = undefined;
    const jws = await signJws(this.options.key, { url, nonce, payload, ...(this.kid ? { kid: this.kid } : { jwk: true as const }) });
    return this.request('POST', url, JSON.stringify(jws));
  }
}
