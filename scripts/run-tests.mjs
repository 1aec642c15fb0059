// Builds the sources and tests, then runs every test file with Node's runner.
// Unit tests always run; integration tests need root (they drive runc, conmon, mounts, cgroups).
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
execFileSync('npx', ['tsc', '-p', 'tsconfig.test.json'], { cwd: root, stdio: 'inherit' });
// The tests run the CLI as users get it: bundled (dist-test/bin/nspod.js) from this build.
execFileSync(process.execPath, ['scripts/bundle.mjs', 'dist-test/src'], { cwd: root, stdio: 'inherit' });

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(dir, f))
    .sort();
}

const list = [...files(path.join(root, 'dist-test/test/unit'))];
if (process.getuid?.() === 0) list.push(...files(path.join(root, 'dist-test/test/integration')));
else console.log('# not root: integration tests skipped');

const extra = process.argv.slice(2);
// Integration tests share the host's cgroups and mounts; run files one at a time.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...list], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
