/**
 * What a CRI pod's CNI plugins are told: a recording plugin at the end of the sandbox's chain
 * (a real executable, run by nspod as any plugin) writes the CNI_ARGS it was given. Kubelet's pod
 * name reaches K8S_POD_NAME as kubelet sent it, whatever the attempt.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sandboxConfig, startCri } from './client.js';
import type { CriFixture } from './client.js';

const recorder = (log: string): string => `#!${process.execPath}
// A CNI plugin that records CNI_COMMAND and CNI_ARGS and passes the previous result on.
const fs = require('node:fs');
let input = '';
process.stdin.on('data', (b) => (input += b));
process.stdin.on('end', () => {
  const cmd = process.env.CNI_COMMAND;
  if (cmd === 'VERSION') return console.log(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] }));
  fs.appendFileSync(${JSON.stringify(log)}, cmd + ' ' + (process.env.CNI_ARGS || '') + '\\n');
  if (cmd === 'ADD') {
    const conf = JSON.parse(input);
    console.log(JSON.stringify({ cniVersion: conf.cniVersion, ...conf.prevResult }));
  }
});
`;

describe('CRI: CNI arguments of a pod', () => {
  let cri: CriFixture;
  let log: string;
  before(async () => {
    cri = await startCri(async (sb) => {
      const dir = path.join(sb.root, 'plugins');
      await fs.mkdir(dir);
      // CNI plugins get a clean environment (CNI_* and PATH): the log's path is in the script.
      log = path.join(sb.root, 'recorder.log');
      await fs.writeFile(path.join(dir, 'recorder'), recorder(log), { mode: 0o755 });
      const file = path.join(sb.net.configDir, '10-test.conflist');
      const conf = JSON.parse(await fs.readFile(file, 'utf8')) as { plugins: Array<Record<string, unknown>> };
      conf.plugins.push({ type: 'recorder' });
      await fs.writeFile(file, JSON.stringify(conf));
      sb.env = { ...sb.env, NSPOD_CNI_PLUGIN_DIRS: `${dir}:/usr/lib/cni:/opt/cni/bin` };
    });
  });
  after(async () => {
    await cri?.stop();
  });

  it("passes kubelet's pod name and namespace, for a first attempt and a retry", async () => {
    const ids: string[] = [];
    for (const attempt of [0, 1]) {
      const config = sandboxConfig('web', {
        metadata: { name: 'web', namespace: 'team', uid: `uid-web-${attempt}`, attempt },
      });
      const r = await cri.client.rs('RunPodSandbox', { config });
      ids.push(r['pod_sandbox_id'] as string);
    }
    const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
    const adds = lines.filter((l) => l.startsWith('ADD '));
    assert.equal(adds.length, 2, lines.join('\n'));
    for (const l of adds) {
      const args = new Map(
        l
          .slice(4)
          .split(';')
          .map((kv) => kv.split('=') as [string, string]),
      );
      assert.equal(args.get('K8S_POD_NAME'), 'web', l);
      assert.equal(args.get('K8S_POD_NAMESPACE'), 'team', l);
    }
    for (const id of ids) {
      await cri.client.rs('StopPodSandbox', { pod_sandbox_id: id });
      await cri.client.rs('RemovePodSandbox', { pod_sandbox_id: id });
    }
    assert.ok((await fs.readFile(log, 'utf8')).includes('DEL '), 'DEL reached the plugin too');
  });
});
