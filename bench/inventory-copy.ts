/**
 * COPY ... FROM STDIN for the inventory bench's seeding, on node-postgres's own client: a Submittable (the
 * interface pg-copy-streams implements) that writes the generator's chunks as CopyData messages and waits
 * for the socket to drain, so the generator never runs ahead of PostgreSQL by more than a socket buffer.
 */
import type { Client } from 'pg';

interface PgConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };
}

class CopyIn {
  private error: Error | undefined;
  readonly done: Promise<void>;
  private settle!: { resolve: () => void; reject: (error: Error) => void };

  constructor(
    private readonly text: string,
    private readonly chunks: AsyncIterable<string>,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: PgConnection): void {
    void (async () => {
      try {
        for await (const chunk of this.chunks) {
          connection.sendCopyFromChunk(Buffer.from(chunk, 'utf8'));
          if (connection.stream.writableNeedDrain) await new Promise((resolve) => connection.stream.once('drain', resolve));
          if (this.error) return;
        }
        connection.endCopyFrom();
      } catch (error) {
        connection.sendCopyFail(error instanceof Error ? error.message : String(error));
      }
    })();
  }

  handleError(error: Error): void {
    this.error = error;
  }

  handleReadyForQuery(): void {
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve();
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY <target> FROM STDIN` (text format) fed by `chunks` (whole lines each). */
export async function copyIn(client: Client, target: string, chunks: AsyncIterable<string>): Promise<void> {
  const copy = new CopyIn(`COPY ${target} FROM STDIN`, chunks);
  (client as unknown as { query(submittable: unknown): unknown }).query(copy);
  await copy.done;
}
