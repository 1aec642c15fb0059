/**
 * Reads a tar stream with the `tar` package's parser, handing each entry to an async handler and
 * waiting for it before the next one (with backpressure on the source), while hashing every byte.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ReadEntry } from 'tar';
import { invalidArgument, messageOf } from '../errors/index.js';

export type { ReadEntry };

export interface ReadTarResult {
  /** `sha256:<hex>` of every byte of the stream (trailing padding included) */
  digest: string;
  size: number;
}

/** What the handler threw, with the entry it was handling. */
export class TarEntryError extends Error {
  constructor(
    readonly entry: string,
    override readonly cause: unknown,
  ) {
    super(`entry "${entry}": ${messageOf(cause)}`);
    this.name = 'TarEntryError';
  }
}

/**
 * Feeds `stream` (an uncompressed tar) through the parser. A handler error stops everything and
 * is rethrown as TarEntryError; a malformed archive is INVALID_ARGUMENT naming `label`. Entries
 * the handler does not consume are drained for it.
 */
export async function readTar(
  stream: Readable,
  onEntry: (entry: ReadEntry) => Promise<void>,
  opts: { label: string },
): Promise<ReadTarResult> {
  // Loaded on first use: most nspod commands never read a tar, and it costs start-up time.
  const { Parser } = await import('tar');
  const { label } = opts;
  const hash = createHash('sha256');
  let size = 0;
  let allZero = true;
  let failure: unknown;
  // promises that must stop waiting when the unpack fails
  const waiters = new Set<() => void>();
  const until = (event: 'drain' | 'end'): Promise<void> =>
    new Promise<void>((resolve) => {
      if (failure !== undefined) return resolve();
      const done = (): void => {
        waiters.delete(done);
        parser.off(event, done);
        resolve();
      };
      waiters.add(done);
      parser.once(event, done);
    });
  let chain: Promise<void> = Promise.resolve();
  let currentEntry: ReadEntry | undefined;
  const fail = (e: unknown): void => {
    if (failure !== undefined) return;
    failure = e;
    for (const w of [...waiters]) w();
    stream.destroy();
    currentEntry?.destroy(); // unblocks a file write waiting for bytes that will never come
  };
  const parser = new Parser({
    brotli: false,
    zstd: false,
    onwarn: (code, message) => {
      if (code === 'TAR_BAD_ARCHIVE' && allZero && size > 0) return; // an empty archive: just end blocks
      fail(invalidArgument(`${label}: not a valid tar archive: ${messageOf(message)}`));
    },
  });
  parser.on('entry', (entry: ReadEntry) => {
    chain = chain.then(async () => {
      if (failure !== undefined) return void entry.resume();
      currentEntry = entry;
      try {
        await onEntry(entry);
      } catch (e) {
        throw new TarEntryError(entry.path, e);
      }
      currentEntry = undefined;
      entry.resume(); // entries without a body end only once resumed
    });
    chain.catch(fail);
  });
  parser.on('error', (e: unknown) => fail(invalidArgument(`${label}: not a valid tar archive: ${messageOf(e)}`, e)));
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (failure !== undefined) break;
      hash.update(chunk);
      size += chunk.length;
      if (allZero && chunk.some((b) => b !== 0)) allZero = false;
      if (!parser.write(chunk)) await until('drain');
    }
  } catch (e) {
    fail(invalidArgument(`${label}: cannot read: ${messageOf(e)}`, e));
  }
  if (failure === undefined) {
    const ended = until('end');
    parser.end();
    await ended;
  }
  await chain.catch(() => undefined);
  if (failure !== undefined) throw failure;
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
