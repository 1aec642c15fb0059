/**
 * A small, deterministic tar writer (ustar headers, pax records for long names and big sizes):
 * the same entries always give the same bytes, which keeps built images' digests stable.
 */
import { createReadStream } from 'node:fs';

export interface TarEntry {
  /** path inside the archive, no leading slash; directories may end with `/` */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  /** seconds since the epoch; default 0 */
  mtime?: number;
  /** file content, either in memory… */
  data?: Buffer;
  /** …or read from this file (then `size` must be given) */
  file?: string;
  size?: number;
  /** symlink target */
  linkname?: string;
}

const TYPEFLAG = { file: '0', symlink: '2', dir: '5' } as const;
const BLOCK = 512;

function octal(h: Buffer, off: number, len: number, n: number): void {
  h.write(n.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function headerBlock(o: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(o.name, 0, 100, 'utf8');
  octal(h, 100, 8, o.mode);
  octal(h, 108, 8, o.uid);
  octal(h, 116, 8, o.gid);
  octal(h, 124, 12, o.size);
  octal(h, 136, 12, o.mtime);
  h.write(' '.repeat(8), 148, 8, 'ascii');
  h.write(o.type, 156, 1, 'ascii');
  h.write(o.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
const MAX_OCTAL_SIZE = 0o77777777777;

/** The header block(s) of one entry: a pax header first when a field does not fit ustar. */
export function entryHeader(e: TarEntry): Buffer {
  const size = e.type === 'file' ? (e.data?.length ?? e.size ?? 0) : 0;
  const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const linkname = e.linkname ?? '';
  const records: string[] = [];
  if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
  if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', linkname));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const common = { mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? 0 };
  const main = headerBlock({
    ...common,
    name: name.slice(0, 100),
    size: Math.min(size, MAX_OCTAL_SIZE),
    type: TYPEFLAG[e.type],
    linkname: linkname.slice(0, 100),
  });
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(''));
  const paxName = `PaxHeaders/${name.replace(/\/$/, '').split('/').pop() ?? 'x'}`.slice(0, 100);
  const ph = headerBlock({ ...common, name: paxName, size: pax.length, type: 'x', linkname: '' });
  return Buffer.concat([ph, pax, pad(pax.length), main]);
}

/** The archive's bytes, entry by entry, ending with the two zero blocks. */
export async function* tarChunks(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    yield entryHeader(e);
    if (e.type !== 'file') continue;
    if (e.data !== undefined) {
      yield e.data;
      yield pad(e.data.length);
    } else if (e.file !== undefined) {
      let n = 0;
      for await (const chunk of createReadStream(e.file) as AsyncIterable<Buffer>) {
        n += chunk.length;
        yield chunk;
      }
      if (n !== e.size) throw new Error(`${e.file} changed size while archiving (${n} != ${e.size})`);
      yield pad(n);
    }
  }
  yield Buffer.alloc(2 * BLOCK);
}
