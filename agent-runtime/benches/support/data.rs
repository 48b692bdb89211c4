//! Seeded synthetic vectors: unit vectors clustered around random centroids (closer to real
//! embeddings than uniform noise, where every point is about equally far from every query),
//! queries drawn from the same clusters, the exact top k by brute force, and the little-endian
//! f32 files the Chroma script reads.

use std::path::Path;

/// xorshift64: tiny, seeded and the same on every machine, which is all the data needs.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced, since xorshift would stay at 0 forever).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1): the top 52 bits as the mantissa of a number in [1, 2), minus 1.
    pub fn unit(&mut self) -> f64 {
        f64::from_bits(0x3FF0_0000_0000_0000 | (self.next_u64() >> 12)) - 1.0
    }

    /// Uniform in 0..n (n > 0); the modulo bias is negligible for the small n used here.
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).expect("usize fits in u64");
        usize::try_from(self.next_u64() % n64).expect("a value below a usize fits in usize")
    }

    /// Standard normal (Box-Muller).
    pub fn gaussian(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// Points and queries, each a flat row-major list of `dimension`-long unit vectors.
pub struct Dataset {
    /// Length of every vector.
    pub dimension: usize,
    /// The points to store; point i is row i and gets id i.
    pub points: Vec<f32>,
    /// The query vectors.
    pub queries: Vec<f32>,
}

impl Dataset {
    /// `points` and `queries` unit vectors around `clusters` random centroids: each is a random
    /// centroid plus gaussian noise of expected norm `spread` (relative to the centroid's 1),
    /// normalised. With spread 1 a point's cosine to its centroid is about 0.7 and to another
    /// point of its cluster about 0.5; points of different clusters are nearly orthogonal.
    pub fn clustered(points: usize, queries: usize, dimension: usize, clusters: usize, spread: f64, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let centroids: Vec<Vec<f64>> =
            (0..clusters.max(1)).map(|_| normalized((0..dimension).map(|_| rng.gaussian()).collect())).collect();
        let sigma = spread / f64::from(u32::try_from(dimension).expect("dimension fits in u32")).sqrt();
        let mut draw = |count: usize| {
            let mut rows = Vec::with_capacity(count * dimension);
            for _ in 0..count {
                let centroid = &centroids[rng.below(centroids.len())];
                let row = centroid.iter().map(|c| c + sigma * rng.gaussian()).collect();
                rows.extend(normalized(row).into_iter().map(narrow));
            }
            rows
        };
        let points = draw(points);
        let queries = draw(queries);
        Self { dimension, points, queries }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len() / self.dimension
    }

    /// Point `index`.
    pub fn point(&self, index: usize) -> &[f32] {
        &self.points[index * self.dimension..(index + 1) * self.dimension]
    }

    /// The query vectors, one slice each.
    pub fn queries(&self) -> impl Iterator<Item = &[f32]> {
        self.queries.chunks_exact(self.dimension)
    }

    /// Ids of the `k` points with the highest dot product (the cosine, for unit vectors) with
    /// each query, best first.
    pub fn exact_top_k(&self, k: usize) -> Vec<Vec<u64>> {
        self.queries()
            .map(|query| {
                // (score, id), best first; a list of k is cheaper to keep sorted than a heap here.
                let mut best: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
                for (id, point) in (0u64..).zip(self.points.chunks_exact(self.dimension)) {
                    let score = dot(query, point);
                    if best.len() < k || score > best[best.len() - 1].0 {
                        let at = best.partition_point(|&(s, _)| s >= score);
                        best.insert(at, (score, id));
                        best.truncate(k);
                    }
                }
                best.into_iter().map(|(_, id)| id).collect()
            })
            .collect()
    }
}

/// Dot product in 8 independent lanes, so the compiler can vectorise it (a single running sum
/// must be added in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Share of the exact top-k ids found, averaged over queries (1.0 is perfect).
pub fn recall(found: &[Vec<u64>], exact: &[Vec<u64>]) -> f64 {
    let (mut hits, mut wanted) = (0u32, 0u32);
    for (found, exact) in found.iter().zip(exact) {
        hits += u32::try_from(exact.iter().filter(|id| found.contains(id)).count()).unwrap_or(u32::MAX);
        wanted += u32::try_from(exact.len()).unwrap_or(u32::MAX);
    }
    if wanted == 0 { 0.0 } else { f64::from(hits) / f64::from(wanted) }
}

/// Writes `values` as little-endian f32, one after another.
pub fn write_f32(path: &Path, values: &[f32]) -> std::io::Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}

fn normalized(mut vector: Vec<f64>) -> Vec<f64> {
    let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut *vector {
            *x /= norm;
        }
    }
    vector
}

#[expect(clippy::cast_possible_truncation, reason = "components of a unit vector lose only precision as f32")]
fn narrow(value: f64) -> f32 {
    value as f32
}
