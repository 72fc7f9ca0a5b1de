// Data-transfer (egress) prices for moving a checkpoint between regions, and the region a zone
// belongs to. A move inside a region is free; across regions the checkpoint's size is billed at the
// source cloud's egress price per GB. The table is explicit and small on purpose: it is documented
// in docs/traces.md, printed by the backtest, and overridable per run (`--egress-per-gb`).
//
// Prices (USD per GB, first tier, public list prices as of 2024–2025):
//   same region                              0
//   AWS, between us-east-1 and us-east-2     0.01   (AWS bills this pair at the lower rate)
//   AWS, any other pair of AWS regions       0.02
//   GCP, between regions on one continent    0.02   (GCP "inter-region, same continent": 0.01–0.02)
//   Azure, between regions on one continent  0.02
//   between continents, or clouds (internet) 0.09   (AWS/Azure internet egress; GCP 0.08–0.12)
// The destination cloud charges nothing for ingress on any of the three.

/** Where a checkpoint lives: a cloud and a region. */
export interface RegionRef {
  cloud: 'aws' | 'gcp' | 'azure' | 'unknown';
  region: string;
}

export const EGRESS_USD_PER_GB = {
  sameRegion: 0,
  awsUsEast1To2: 0.01,
  awsInterRegion: 0.02,
  gcpInterRegionSameContinent: 0.02,
  azureInterRegionSameContinent: 0.02,
  internet: 0.09,
} as const;

/**
 * The region of a zone name, and its cloud when the name's shape says so:
 * `us-east-1c` (AWS) → us-east-1; `us-central1-a` (GCP) → us-central1; `eastus-1` (Azure zone
 * numbering) → eastus. Anything else is its own region of an unknown cloud: moves between two such
 * regions are priced as internet egress (the conservative case) unless a trace names the regions.
 * @example regionOfZone('us-east-1c') // { cloud: 'aws', region: 'us-east-1' }
 */
export function regionOfZone(zone: string): RegionRef {
  const aws = /^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$/.exec(zone);
  if (aws?.[1]) return { cloud: 'aws', region: aws[1] };
  const gcp = /^([a-z]+-[a-z]+\d+)-[a-z]$/.exec(zone);
  if (gcp?.[1]) return { cloud: 'gcp', region: gcp[1] };
  const az = /^([a-z]+\d?)-([123])$/.exec(zone);
  if (az?.[1]) return { cloud: 'azure', region: az[1] };
  return { cloud: 'unknown', region: zone };
}

/**
 * A region name as a RegionRef, its cloud from the name's shape: `us-east-1` (AWS), `us-central1`
 * (GCP), `eastus` / `westeurope` (Azure); unknown otherwise.
 */
export function regionRef(region: string): RegionRef {
  if (/^[a-z]{2}(?:-gov)?-[a-z]+-\d+$/.test(region)) return { cloud: 'aws', region };
  if (/^[a-z]+-[a-z]+\d+$/.test(region)) return { cloud: 'gcp', region };
  if (/^[a-z]+\d?$/.test(region)) return { cloud: 'azure', region };
  return { cloud: 'unknown', region };
}

function continent(r: RegionRef): string {
  const m = /^([a-z]+)/.exec(r.region);
  const p = m?.[1] ?? r.region;
  // AWS/GCP prefixes: us, ca, sa, eu, europe, me, af, ap, asia, australia, northamerica, southamerica.
  if (['us', 'ca', 'northamerica'].includes(p)) return 'na';
  if (['eu', 'europe'].includes(p)) return 'eu';
  if (['ap', 'asia', 'australia'].includes(p)) return 'ap';
  if (['sa', 'southamerica'].includes(p)) return 'sa';
  return p;
}

/**
 * USD per GB to move a checkpoint from `from` to `to` (see the table in the header).
 * @example egressUsdPerGb(regionOfZone('us-east-1c'), regionOfZone('us-west-2a')) // 0.02
 */
export function egressUsdPerGb(from: RegionRef, to: RegionRef): number {
  if (from.region === to.region && from.cloud === to.cloud) return EGRESS_USD_PER_GB.sameRegion;
  if (from.cloud !== to.cloud || from.cloud === 'unknown') return EGRESS_USD_PER_GB.internet;
  if (continent(from) !== continent(to)) return EGRESS_USD_PER_GB.internet;
  if (from.cloud === 'aws') {
    const pair = [from.region, to.region].sort().join(',');
    return pair === 'us-east-1,us-east-2' ? EGRESS_USD_PER_GB.awsUsEast1To2 : EGRESS_USD_PER_GB.awsInterRegion;
  }
  return from.cloud === 'gcp' ? EGRESS_USD_PER_GB.gcpInterRegionSameContinent : EGRESS_USD_PER_GB.azureInterRegionSameContinent;
}

/** USD to move `sizeGB` of checkpoint between two regions (0 when the size is unknown or 0). */
export function egressUsd(sizeGB: number | undefined, from: RegionRef, to: RegionRef): number {
  if (sizeGB === undefined || !(sizeGB > 0)) return 0;
  return sizeGB * egressUsdPerGb(from, to);
}
