// The GCE metadata fake as an HTTP server: Metadata-Flavor both ways, ETags, the wait_for_change
// long-poll (with last_etag and timeout_sec), identity and the 503 fault.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGceMetadataServer, type GceMetadataControl } from '../fakes/gce-metadata.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { raw } from './util.js';

const G = { 'Metadata-Flavor': 'Google' };

describe('GCE metadata fake', () => {
  let gce: FakeHandle<GceMetadataControl>;
  const v1 = (p: string): string => `${gce.url}/computeMetadata/v1/${p}`;
  beforeAll(async () => {
    gce = await startGceMetadataServer({ name: 'vm-a', zone: 'us-central1-b', projectNumber: '42', instanceId: '777' });
  });
  afterAll(async () => gce.close());

  it('answers 403 without Metadata-Flavor: Google, and sends the header and an ETag with answers', async () => {
    expect((await raw(v1('instance/preempted'))).status).toBe(403);
    expect((await raw(v1('instance/preempted'), { headers: { 'Metadata-Flavor': 'google-ish' } })).status).toBe(403);
    const r = await raw(v1('instance/preempted'), { headers: G });
    expect(r.status).toBe(200);
    expect(r.body).toBe('FALSE');
    expect(r.headers['metadata-flavor']).toBe('Google');
    expect(r.headers.etag).toMatch(/^[0-9a-f]{16}$/);
    expect((await raw(v1('instance/no-such-key'), { headers: G })).status).toBe(404);
  });

  it('serves identity items, the zone as projects/N/zones/Z', async () => {
    expect((await raw(v1('instance/name'), { headers: G })).body).toBe('vm-a');
    expect((await raw(v1('instance/id'), { headers: G })).body).toBe('777');
    expect((await raw(v1('instance/zone'), { headers: G })).body).toBe('projects/42/zones/us-central1-b');
  });

  it('returns a wait_for_change long-poll when the value changes, with a new ETag', async () => {
    const first = await raw(v1('instance/maintenance-event'), { headers: G });
    expect(first.body).toBe('NONE');
    const pending = raw(`${v1('instance/maintenance-event')}?wait_for_change=true&last_etag=${first.headers.etag ?? ''}`, { headers: G });
    // The request must be hanging before the change, or the test proves nothing.
    for (let i = 0; i < 200 && gce.control.state().waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(gce.control.state().waiting).toBe(1);
    gce.control.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    const changed = await pending;
    expect(changed.status).toBe(200);
    expect(changed.body).toBe('TERMINATE_ON_HOST_MAINTENANCE');
    expect(changed.headers.etag).not.toBe(first.headers.etag);
    gce.control.setMaintenanceEvent('NONE');
  });

  it('answers at once when last_etag is stale, and after timeout_sec when nothing changes', async () => {
    const cur = await raw(v1('instance/preempted'), { headers: G });
    const stale = await raw(`${v1('instance/preempted')}?wait_for_change=true&last_etag=0000000000000000`, { headers: G });
    expect(stale.body).toBe('FALSE');
    expect(stale.headers.etag).toBe(cur.headers.etag);
    const timedOut = await raw(`${v1('instance/preempted')}?wait_for_change=true&last_etag=${cur.headers.etag ?? ''}&timeout_sec=1`, { headers: G });
    expect(timedOut.status).toBe(200);
    expect(timedOut.headers.etag).toBe(cur.headers.etag);
    expect((await raw(`${v1('instance/preempted')}?wait_for_change=true&timeout_sec=x`, { headers: G })).status).toBe(400);
  });

  it('flips preempted to TRUE', async () => {
    gce.control.preempt();
    expect((await raw(v1('instance/preempted'), { headers: G })).body).toBe('TRUE');
    gce.control.clearPreempted();
  });

  it('answers 503 in the fault mode, still with Metadata-Flavor', async () => {
    gce.control.setFault({ status: 503 });
    const r = await raw(v1('instance/preempted'), { headers: G });
    expect(r.status).toBe(503);
    expect(r.headers['metadata-flavor']).toBe('Google');
    gce.control.setFault(null);
    expect((await raw(v1('instance/preempted'), { headers: G })).status).toBe(200);
  });
});
