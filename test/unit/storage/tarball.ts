/**
 * A hand-made tar writer for tests: writes headers exactly as given (no normalisation), so hostile
 * entries (`../x`, `/etc/passwd`) can be built.
 */
import { gzipSync } from 'node:zlib';

export interface RawEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  body?: string | Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

const TYPES = { file: '0', link: '1', symlink: '2', char: '3', dir: '5', fifo: '6' } as const;

function octal(buf: Buffer, off: number, len: number, n: number): void {
  buf.write(n.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

export function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'utf8');
  octal(h, 100, 8, e.mode ?? (e.type === 'dir' ? 0o755 : 0o644));
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtime ?? 1_700_000_000);
  h.write('        ', 148, 8, 'ascii');
  h.write(TYPES[e.type ?? 'file'], 156, 1, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  octal(h, 329, 8, e.devmajor ?? 0);
  octal(h, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

export function makeTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    parts.push(header(e, body.length));
    if (body.length > 0) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function makeTarGz(entries: RawEntry[]): Buffer {
  return gzipSync(makeTar(entries));
}
