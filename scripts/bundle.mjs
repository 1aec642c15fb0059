// Bundles the compiled CLI (a tsc output dir's cli/main.js) into <outdir>/nspod.js with esbuild:
// one file for what every command loads, split chunks for what only some commands import
// lazily. Node then resolves and compiles a few files instead of a few hundred, which is most of
// a short command's start-up. Packages that find their own files at run time (gRPC's proto
// loader, spdy, ws) stay external and load from node_modules.
//
//   node scripts/bundle.mjs dist            → dist/bin/nspod.js         (the installed `nspod`)
//   node scripts/bundle.mjs dist-test/src   → dist-test/bin/nspod.js    (what the tests run)
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';

const src = process.argv[2] ?? 'dist';
const outdir = path.join(src === 'dist' ? 'dist' : path.dirname(src), 'bin');
rmSync(outdir, { recursive: true, force: true });
await build({
  // spawner.js: the helper a daemon starts its commands through (src/host/spawner.ts).
  entryPoints: { nspod: path.join(src, 'cli', 'main.js'), spawner: path.join(src, 'host', 'spawner-main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'spdy-transport', 'ws'],
  // CommonJS packages in an ESM bundle still call require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __nspodRequire } from 'node:module';\nconst require = __nspodRequire(import.meta.url);",
  },
  logLevel: 'warning',
  legalComments: 'none',
  // Less source for V8 to scan at every start (~10 ms of CPU); names are kept for stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
});
chmodSync(path.join(outdir, 'nspod.js'), 0o755);
