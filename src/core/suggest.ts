// "Did you mean": the known word nearest to a typo, by edit distance, when it is near enough to
// be the likely intent.

/** Levenshtein distance, case-insensitive (a case slip counts as nothing). */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (s[i - 1] === t[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[t.length] as number;
}

/**
 * The candidate nearest to `word`, when within a third of its length (at least 1, at most 3
 * edits); undefined when nothing is that close.
 * @example nearestWord('prcePerHour', ['pricePerHour', 'gpus']) // 'pricePerHour'
 */
export function nearestWord(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= limit ? best : undefined;
}
