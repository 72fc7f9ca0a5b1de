// The lab harness itself: nodes come up with their own sshd, engine, private /srv/spotfleet, fake
// nvidia-smi and trainer image, the metadata hook serves inside a node's namespace only, and close()
// leaves no process, namespace or folder behind.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describeLab } from './lab/gate.js';
import { startLab, type Lab } from './lab/lab.js';

// The cloud metadata address: it exists only inside the lab nodes' own network namespaces (the lab
// binds it there); every use below runs on a node over SSH, never from the root namespace.
const MD_INSIDE_NODE_NETNS = '169.254.169.254';

describeLab('lab harness', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 2, gpuModel: 'H100 80GB HBM3' }, { name: 'b', gpus: 1, gpuModel: 'A100' }] });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('gives each node its own sshd, engine (DOCKER_HOST via sshd) and fake nvidia-smi', async () => {
    const r = await lab.ssh('a', 'nvidia-smi --query-gpu=index,name,utilization.gpu,memory.total,memory.free --format=csv,noheader,nounits');
    expect(r.stdout).toBe('0, NVIDIA H100 80GB HBM3, 0, 81559, 81004\n1, NVIDIA H100 80GB HBM3, 0, 81559, 81004\n');
    lab.setGpus('b', ['0, NVIDIA A100, 97, 40960, 100']);
    expect((await lab.ssh('b', 'nvidia-smi --query-gpu=index --format=csv,noheader,nounits')).stdout).toBe('0, NVIDIA A100, 97, 40960, 100\n');
    const imgs = await lab.ssh('b', 'docker images --format "{{.Repository}}:{{.Tag}}"');
    expect(imgs.stdout.trim()).toBe(lab.image);
  });

  it('keeps /srv/spotfleet private per node, and lets the nodes reach each other', async () => {
    await lab.ssh('a', 'echo from-a > /srv/spotfleet/checkpoints/x');
    expect(existsSync(join(lab.node('a').srvDir, 'checkpoints', 'x'))).toBe(true);
    expect((await lab.ssh('b', 'ls /srv/spotfleet/checkpoints')).stdout).toBe('');
    const b = lab.node('b');
    const r = await lab.ssh('a', `ssh -i ${lab.clientKeyPath} -o UserKnownHostsFile=${lab.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes root@${b.address} hostname -I`);
    expect(r.stdout).toContain(b.address);
  });

  it('runs the trainer image: checkpoint on USR1, resume from RESUME_FROM_CHECKPOINT', async () => {
    const ck = '/srv/spotfleet/checkpoints/t1';
    await lab.ssh('a', `mkdir -p ${ck}`);
    const id = (await lab.ssh('a', `docker run -d --network none -v ${ck}:/checkpoints ${lab.image}`)).stdout.trim();
    await new Promise((r) => setTimeout(r, 800));
    await lab.ssh('a', `docker kill -s USR1 ${id}`);
    await new Promise((r) => setTimeout(r, 400));
    await lab.ssh('a', `docker stop --timeout 10 ${id}`);
    const logs = (await lab.ssh('a', `docker logs ${id}`)).stdout;
    expect(logs).toMatch(/checkpoint step=\d+ \(USR1\)/);
    const step = (await lab.ssh('a', `cat ${ck}/step`)).stdout.trim();
    const id2 = (await lab.ssh('a', `docker run -d --network none -e RESUME_FROM_CHECKPOINT=/checkpoints -v ${ck}:/checkpoints ${lab.image}`)).stdout.trim();
    await new Promise((r) => setTimeout(r, 300));
    expect((await lab.ssh('a', `docker logs ${id2}`)).stdout).toContain(`resumed from step ${step}`);
  });

  it('serves a metadata fake on 169.254.169.254 inside the node namespace only', async () => {
    const trigger = join(lab.dir, 'trigger-a.json');
    // startMetadata binds the address inside node a's own network namespace (ip addr add … dev lo there).
    const md = await lab.startMetadata('a', [process.execPath, lab.tinyImdsPath, `${MD_INSIDE_NODE_NETNS}:80`, trigger]);
    // Run over SSH on node a, i.e. inside its namespace: the root namespace never reaches this address.
    const q = `T=$(curl -s -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" http://${MD_INSIDE_NODE_NETNS}/latest/api/token); curl -s -o /dev/null -w "%{http_code}" -H "X-aws-ec2-metadata-token: $T" http://${MD_INSIDE_NODE_NETNS}/latest/meta-data/spot/instance-action`;
    expect((await lab.ssh('a', q)).stdout).toBe('404');
    writeFileSync(trigger, '{"action": "terminate", "time": "2030-01-01T00:02:00Z"}');
    expect((await lab.ssh('a', q)).stdout).toBe('200');
    // node b has the address on its own lo but nothing listens there
    expect((await lab.ssh('b', `curl -s -m 2 -o /dev/null -w "%{http_code}" http://${MD_INSIDE_NODE_NETNS}/ || true`)).stdout).toBe('000');
    await md.stop();
  });

  it('close() stops every process and removes namespaces and the folder', async () => {
    const extra = await startLab({ nodes: [{ name: 'z', gpus: 1, gpuModel: 'T4' }] });
    const ns = extra.node('z').netns;
    await extra.ssh('z', `docker run -d --network none ${extra.image}`);
    const dir = extra.dir;
    await extra.close();
    expect(existsSync(dir)).toBe(false);
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(ns);
    const ps = execFileSync('ps', ['-eo', 'args']).toString();
    expect(ps).not.toContain(dir);
  });
});
