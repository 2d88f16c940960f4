//! The RFC 9162 (RFC 6962) Merkle tree over the log, with inclusion and consistency proofs.
//!
//! - leaf hash: `SHA-256(0x00 || leaf data)`; for the audit log the leaf data is a
//!   record's 32-byte chain `hash`, so `leaf = SHA-256(0x00 || record.hash)`;
//! - interior node: `SHA-256(0x01 || left || right)`;
//! - the root of the empty tree is `SHA-256("")`;
//! - a tree of `n > 1` leaves splits at `k`, the largest power of two below `n`.
//!
//! Generation works on a slice of leaf hashes; verification needs only the proof,
//! sizes and roots. [`Frontier`] keeps the O(log n) "compact range" of perfect
//! subtree roots, so a root can be maintained while events stream by.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes do not describe a tree and a later version of it.
    #[error("no consistency proof exists from size {first} to size {second}")]
    BadSizes {
        /// The earlier size.
        first: u64,
        /// The later size.
        second: u64,
    },
    /// The proof has the wrong number of hashes for the sizes.
    #[error("proof has the wrong number of hashes for these sizes")]
    WrongLength,
    /// The proof does not lead to the expected root(s).
    #[error("proof does not match the root hash")]
    Mismatch,
    /// A frontier's node count does not fit its size.
    #[error("a compact range of size {size} must hold {expected} hashes, found {found}")]
    BadFrontier {
        /// The size claimed.
        size: u64,
        /// Hashes required (one per set bit of the size).
        expected: usize,
        /// Hashes given.
        found: usize,
    },
}

/// Proof that one leaf is in a tree of a given size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf's index (the record's `seq`).
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The audit path, bottom up.
    pub hashes: Vec<Hash>,
}

/// Proof that the tree of `second_size` extends the tree of `first_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The earlier size.
    pub first_size: u64,
    /// The later size.
    pub second_size: u64,
    /// The proof nodes.
    pub hashes: Vec<Hash>,
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Hash::of_parts(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of_parts(&[&[0x01], left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash::of_parts(&[])
}

/// The root over `leaves` (leaf hashes).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree over all of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<InclusionProof, ProofError> {
    let size = leaves.len() as u64;
    let idx = usize::try_from(index)
        .ok()
        .filter(|&i| i < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut hashes = Vec::new();
    path(idx, leaves, &mut hashes);
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        hashes,
    })
}

/// RFC 9162 section 2.1.3.1, PATH(m, D[n]); pushes bottom-up.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof from the first `first` leaves to the first `second` leaves.
pub fn consistency_proof(
    leaves: &[Hash],
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, ProofError> {
    let bad = ProofError::BadSizes { first, second };
    if first > second || second > leaves.len() as u64 {
        return Err(bad);
    }
    let (m, n) = (usize::try_from(first), usize::try_from(second));
    let (Ok(m), Ok(n)) = (m, n) else {
        return Err(bad);
    };
    let mut hashes = Vec::new();
    if m > 0 && m < n {
        subproof(m, &leaves[..n], true, &mut hashes);
    }
    Ok(ConsistencyProof {
        first_size: first,
        second_size: second,
        hashes,
    })
}

/// RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], b).
fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// The root an inclusion proof leads to (RFC 9162 section 2.1.3.2).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Checks that `leaf` is at `index` in the tree of `size` with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks that the tree of `second` leaves with root `second_root` extends the tree of
/// `first` leaves with root `first_root` (RFC 9162 section 2.1.4.2). As in the
/// reference implementation, a proof from size 0 is empty and always holds, and a
/// proof between equal sizes is empty and holds when the roots are equal.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::BadSizes { first, second });
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first == 0 || first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let (fr, sr) = consistency_roots(first, second, first_root, proof)?;
    if fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Steps 2 to 6 of RFC 9162 section 2.1.4.2, for `0 < first < second`.
fn consistency_roots(
    first: u64,
    second: u64,
    first_root: &Hash,
    proof: &[Hash],
) -> Result<(Hash, Hash), ProofError> {
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((seed, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok((fr, sr))
}

/// The roots of the perfect subtrees that make up a tree, largest first: enough to
/// append leaves and compute the root in O(log n) memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from its parts, as stored next to a checkpoint.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Frontier, ProofError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(ProofError::BadFrontier {
                size,
                expected,
                found: nodes.len(),
            });
        }
        Ok(Frontier { size, nodes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            // A set low bit means a perfect subtree of the same height waits on the left.
            let Some(left) = self.nodes.pop() else { break };
            node = node_hash(&left, &node);
            size >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(mut acc) = iter.next().copied() else {
            return empty_root();
        };
        for left in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }

    /// Concatenated node hashes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.iter().flat_map(|h| h.0).collect()
    }

    /// Parses [`Frontier::to_bytes`] output.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, ProofError> {
        let expected = size.count_ones() as usize;
        let bad = ProofError::BadFrontier {
            size,
            expected,
            found: bytes.len() / 32,
        };
        if !bytes.len().is_multiple_of(32) {
            return Err(bad);
        }
        let nodes = bytes
            .chunks_exact(32)
            .filter_map(Hash::from_slice)
            .collect();
        Frontier::from_parts(size, nodes)
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from the RFC 6962 reference test data, as published in
    //! transparency-dev/merkle `proof/verify_test.go` (leaves, roots, proofs).
    use super::*;

    fn h(hex: &str) -> Hash {
        hex.parse().unwrap()
    }

    fn leaf_data() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
    }

    fn leaves() -> Vec<Hash> {
        leaf_data().iter().map(|d| leaf_hash(d)).collect()
    }

    /// Roots of the trees of sizes 1 to 8.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (leaf index, tree size, proof)
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (first size, second size, proof)
    fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    fn root_of(size: u64) -> Hash {
        h(ROOTS[size as usize - 1])
    }

    #[test]
    fn roots_match_the_reference() {
        let leaves = leaves();
        assert_eq!(
            root(&[]).hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for size in 1..=8u64 {
            assert_eq!(root(&leaves[..size as usize]), root_of(size), "size {size}");
        }
    }

    #[test]
    fn frontier_roots_match_the_batch_roots_at_every_size() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), root(&leaves[..=i]), "size {}", i + 1);
            let stored = Frontier::from_bytes(frontier.size(), &frontier.to_bytes()).unwrap();
            assert_eq!(stored, frontier);
        }
        assert!(Frontier::from_parts(3, vec![Hash::ZERO]).is_err());
    }

    #[test]
    fn inclusion_proofs_are_generated_and_verified_as_the_reference() {
        let leaves = leaves();
        for (index, size, expected) in inclusion_vectors() {
            let tree = &leaves[..size as usize];
            let proof = inclusion_proof(tree, index).unwrap();
            assert_eq!(proof.hashes, expected, "index {index} size {size}");
            let leaf = leaves[index as usize];
            verify_inclusion(index, size, &leaf, &expected, &root_of(size)).unwrap();
            for (desc, probe) in corrupt_inclusion(index, size, &expected) {
                let (i, s, p, r, l) = probe;
                let leaf = l.unwrap_or(leaf);
                let root = r.unwrap_or_else(|| root_of(size));
                assert!(
                    verify_inclusion(i, s, &leaf, &p, &root).is_err(),
                    "{desc} verified for index {index} size {size}"
                );
            }
        }
    }

    type InclusionProbe = (u64, u64, Vec<Hash>, Option<Hash>, Option<Hash>);

    /// The reference's corruptions of a valid inclusion proof.
    fn corrupt_inclusion(index: u64, size: u64, proof: &[Hash]) -> Vec<(String, InclusionProbe)> {
        let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        let mut probes: Vec<(String, InclusionProbe)> = vec![
            (
                "index+1".into(),
                (index + 1, size, proof.to_vec(), None, None),
            ),
            (
                "index^2".into(),
                (index ^ 2, size, proof.to_vec(), None, None),
            ),
            (
                "size*2".into(),
                (index, size * 2, proof.to_vec(), None, None),
            ),
            (
                "size/2".into(),
                (index, size / 2, proof.to_vec(), None, None),
            ),
            (
                "wrong leaf".into(),
                (index, size, proof.to_vec(), None, Some(some)),
            ),
            (
                "empty root".into(),
                (index, size, proof.to_vec(), Some(empty_root()), None),
            ),
            (
                "random root".into(),
                (index, size, proof.to_vec(), Some(some), None),
            ),
        ];
        if index > 0 {
            probes.push((
                "index-1".into(),
                (index - 1, size, proof.to_vec(), None, None),
            ));
        }
        let mut trailing = proof.to_vec();
        trailing.push(root_of(size));
        probes.push(("trailing root".into(), (index, size, trailing, None, None)));
        let mut preceding = vec![root_of(size)];
        preceding.extend_from_slice(proof);
        probes.push((
            "preceding root".into(),
            (index, size, preceding, None, None),
        ));
        for i in 0..proof.len() {
            let mut flipped = proof.to_vec();
            flipped[i].0[0] ^= 8;
            probes.push((
                format!("flipped bit in proof[{i}]"),
                (index, size, flipped, None, None),
            ));
        }
        if !proof.is_empty() {
            let short = proof[..proof.len() - 1].to_vec();
            probes.push(("removed component".into(), (index, size, short, None, None)));
        }
        probes
    }

    /// (description, first size, second size, first root, second root, proof)
    type ConsistencyProbe = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

    #[test]
    fn consistency_proofs_are_generated_and_verified_as_the_reference() {
        let leaves = leaves();
        for (first, second, expected) in consistency_vectors() {
            let proof = consistency_proof(&leaves, first, second).unwrap();
            assert_eq!(proof.hashes, expected, "{first} -> {second}");
            let (r1, r2) = (root_of(first), root_of(second));
            verify_consistency(first, second, &r1, &r2, &expected).unwrap();
            if expected.is_empty() {
                continue;
            }
            let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
            let mut probes: Vec<ConsistencyProbe> = vec![
                ("first-1", first - 1, second, r1, r2, expected.clone()),
                ("first+1", first + 1, second, r1, r2, expected.clone()),
                ("first^2", first ^ 2, second, r1, r2, expected.clone()),
                ("second*2", first, second * 2, r1, r2, expected.clone()),
                ("second/2", first, second / 2, r1, r2, expected.clone()),
                ("wrong root1", first, second, some, r2, expected.clone()),
                ("wrong root2", first, second, r1, some, expected.clone()),
                ("swapped roots", first, second, r2, r1, expected.clone()),
                ("empty proof", first, second, r1, r2, vec![]),
                (
                    "truncated",
                    first,
                    second,
                    r1,
                    r2,
                    expected[..expected.len() - 1].to_vec(),
                ),
            ];
            for extra in [r1, r2, expected[0]] {
                let mut trailing = expected.clone();
                trailing.push(extra);
                probes.push(("trailing", first, second, r1, r2, trailing));
                let mut preceding = vec![extra];
                preceding.extend_from_slice(&expected);
                probes.push(("preceding", first, second, r1, r2, preceding));
            }
            for i in 0..expected.len() {
                let mut flipped = expected.clone();
                flipped[i].0[0] ^= 16;
                probes.push(("flipped bit", first, second, r1, r2, flipped));
            }
            for (desc, f, s, a, b, p) in probes {
                assert!(
                    verify_consistency(f, s, &a, &b, &p).is_err(),
                    "{desc} verified for {first} -> {second}"
                );
            }
        }
    }

    #[test]
    fn consistency_edge_cases_follow_the_reference() {
        let (a, b) = (h(ROOTS[0]), h(ROOTS[1]));
        let e = empty_root();
        // (first, second, first root, second root, proof, verifies)
        type Case = (u64, u64, Hash, Hash, Vec<Hash>, bool);
        let cases: &[Case] = &[
            (0, 0, a, b, vec![], true),
            (1, 1, a, b, vec![], false),
            (0, 0, a, a, vec![], true),
            (0, 1, a, b, vec![], true),
            (1, 1, b, b, vec![], true),
            (1, 0, a, b, vec![], false),
            (2, 1, a, b, vec![], false),
            (1, 2, a, b, vec![], false),
            (0, 0, e, e, vec![e], false),
            (0, 1, e, e, vec![e], false),
            (1, 1, e, e, vec![e], false),
        ];
        for (first, second, r1, r2, proof, ok) in cases {
            let result = verify_consistency(*first, *second, r1, r2, proof);
            assert_eq!(result.is_ok(), *ok, "{first} -> {second}: {result:?}");
        }
    }

    #[test]
    fn generated_proofs_verify_for_every_pair_of_small_sizes() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=leaves.len() as u64 {
            let tree = &leaves[..size as usize];
            let r = root(tree);
            for index in 0..size {
                let proof = inclusion_proof(tree, index).unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &proof.hashes, &r).unwrap();
            }
            for first in 0..=size {
                let proof = consistency_proof(&leaves, first, size).unwrap();
                let r1 = root(&leaves[..first as usize]);
                verify_consistency(first, size, &r1, &r, &proof.hashes).unwrap();
            }
        }
        assert!(inclusion_proof(&leaves, 40).is_err());
        assert!(consistency_proof(&leaves, 5, 41).is_err());
        assert!(consistency_proof(&leaves, 6, 5).is_err());
    }
}
