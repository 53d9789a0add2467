/** A small seeded PRNG (mulberry32), so that property tests fail the same way twice. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random 64-bit positions, biased towards edges: small, around 2^32 and 2^53, and huge. */
export function randomLsn(rand: () => number): bigint {
  const word = () => BigInt(Math.floor(rand() * 2 ** 32));
  switch (Math.floor(rand() * 4)) {
    case 0:
      return word() & 0xffffn;
    case 1:
      return (1n << 32n) + word() - (1n << 31n);
    case 2:
      return (1n << 53n) + word() - (1n << 31n);
    default:
      return (word() << 32n) | word();
  }
}
