// checkpoint.verify on ssh nodes (issue #11), against the real-peer lab: the workload's command
// runs on the node over ssh with every argument quoted (shell metacharacters are data), with the
// checkpoint folder as last argument and in CHECKPOINT_PATH; a failing command or an excluded
// folder means no checkpoint.
import { afterAll, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { labContext, labHosts, writeLabCheckpoint } from '../lab/fixtures.js';
import { createSshProvider } from '../../providers/ssh/index.js';
import type { Provider } from '../../src/providers/sdk.js';

let labP: Promise<Lab> | undefined;
const getLab = (): Promise<Lab> => (labP ??= startLab({ nodes: [{ name: 'a', gpus: 1, gpuModel: 'H100 80GB HBM3' }] }));

describeLab('checkpoint.verify on ssh nodes (lab)', () => {
  let p: Provider | undefined;
  afterAll(async () => {
    await p?.close?.();
    await (await labP)?.close();
  });

  it('runs the command on the node, quoted, and only a passing checkpoint counts', async () => {
    const lab = await getLab();
    p = createSshProvider({ hosts: labHosts(lab) }, labContext(lab, 'gpu', 'verify'));
    const node = (await p.nodes!.list()).find((n) => n.id === 'a')!;
    writeLabCheckpoint(lab, 'a', 'train', 'step=42\n');
    const pwned = join(lab.dir, 'pwned');
    const evilArg = `x; touch ${pwned}; echo $(touch ${pwned})`;
    // $1: the argument with shell metacharacters (data), $2: the checkpoint folder.
    const seen = join(lab.dir, 'arg1');
    const command = ['sh', '-c', `printf %s "$1" > ${seen}; test "$CHECKPOINT_PATH" = "$2" && grep -qx "step=42" "$2/step"`, 'sh', evilArg];
    const ok = await p.storage!.verify({ node, workload: 'train', command });
    expect(ok?.path).toBe('/srv/spotfleet/checkpoints/train');
    expect(readFileSync(seen, 'utf8')).toBe(evilArg);
    expect(existsSync(pwned)).toBe(false);

    // A corrupt checkpoint fails the command: none counts.
    writeLabCheckpoint(lab, 'a', 'train', 'step=4');
    expect(await p.storage!.verify({ node, workload: 'train', command })).toBeNull();
    // Without the command the file checks alone pass it; excluded, it does not count either.
    expect((await p.storage!.verify({ node, workload: 'train' }))?.path).toBe('/srv/spotfleet/checkpoints/train');
    expect(await p.storage!.verify({ node, workload: 'train', exclude: ['/srv/spotfleet/checkpoints/train/'] })).toBeNull();
    expect(existsSync(pwned)).toBe(false);
  }, 180_000);
});
