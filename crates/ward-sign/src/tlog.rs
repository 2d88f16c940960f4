//! Transparency-log (Rekor v1) evidence, checked offline against configured log keys.
//!
//! An entry counts when (1) its log is configured, (2) its body binds *this*
//! signature, signing key and signed content, and (3) at least one of: a signed
//! entry timestamp (SET, the "inclusion promise") by the log key, or an RFC 6962
//! inclusion proof up to a checkpoint signed by the log key. Only a verified SET
//! makes `integratedTime` trustworthy, so only then does the entry give a
//! signing time.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::encoding::{b64_decode, b64_encode, hex, pem_decode};
use crate::keys::KeyId;
use crate::time::{UnixSeconds, format_rfc3339};
use crate::trust_root::{LogKey, TrustRoot};

/// Most sibling hashes an inclusion proof may carry (a tree of 2^64 leaves needs 64).
pub const PROOF_HASHES_MAX: usize = 64;
/// Most signature lines read from one checkpoint.
pub const CHECKPOINT_SIGNATURES_MAX: usize = 16;

/// One transparency-log entry as carried by a bundle or a cosign annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// sha256 of the log's public key.
    pub log_id: Vec<u8>,
    /// The entry's global index.
    pub log_index: i64,
    /// When the log says it integrated the entry.
    pub integrated_time: UnixSeconds,
    /// The canonicalized entry body (JSON).
    pub body: Vec<u8>,
    /// The signed entry timestamp, if any.
    pub signed_entry_timestamp: Option<Vec<u8>>,
    /// The inclusion proof, if any.
    pub inclusion_proof: Option<InclusionProof>,
}

/// An RFC 6962 inclusion proof with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the leaf within the tree the proof is for.
    pub log_index: u64,
    /// Size of that tree.
    pub tree_size: u64,
    /// Its root hash.
    pub root_hash: Vec<u8>,
    /// Sibling hashes, leaf to root.
    pub hashes: Vec<Vec<u8>>,
    /// The signed note committing to (tree_size, root_hash).
    pub checkpoint: Option<String>,
}

/// What a log entry must bind to count for a particular signature.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The signature bytes.
    pub signature: &'a [u8],
    /// DER of what verified it: the certificate, or the key's SPKI.
    pub verifier_der: &'a [u8],
    /// What was signed.
    pub content: SignedContent,
}

/// The content a log entry must commit to.
#[derive(Debug, Clone, Copy)]
pub enum SignedContent {
    /// A `hashedrekord` entry for an artifact with this sha256.
    Artifact([u8; 32]),
    /// A `dsse` entry for an envelope whose payload has this sha256.
    DssePayload([u8; 32]),
}

/// A log entry that checked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifiedEntry {
    /// The log's id.
    pub log_id: KeyId,
    /// Entry index in the log.
    pub log_index: i64,
    /// Trusted integration time: present only when a SET verified.
    pub integrated_time: Option<UnixSeconds>,
}

/// Checks `entry` against the logs of `roots`. `Ok(None)` means the entry's
/// log is not configured (the entry is neither evidence nor an error).
pub fn verify_entry(
    entry: &LogEntry,
    roots: &[&TrustRoot],
    binding: &Binding<'_>,
) -> Result<Option<VerifiedEntry>, EntryError> {
    let Some(log) = roots.iter().find_map(|r| r.log(&entry.log_id)) else {
        return Ok(None);
    };
    check_kind(&entry.body)?;
    check_body(&entry.body, binding)?;
    if entry.signed_entry_timestamp.is_none() && entry.inclusion_proof.is_none() {
        return Err(
            "log entry carries neither a signed entry timestamp nor an inclusion proof".into(),
        );
    }
    let mut integrated_time = None;
    if let Some(set) = &entry.signed_entry_timestamp {
        verify_set(entry, set, log)?;
        if !log.valid.contains(entry.integrated_time) {
            return Err(EntryError::Invalid(format!(
                "log key was not valid at the entry's integration time {}",
                format_rfc3339(entry.integrated_time)
            )));
        }
        integrated_time = Some(entry.integrated_time);
    }
    if let Some(proof) = &entry.inclusion_proof {
        verify_inclusion(&entry.body, proof, log)?;
    }
    Ok(Some(VerifiedEntry {
        log_id: KeyId(ward_core::Digest::from_bytes(log.log_id)),
        log_index: entry.log_index,
        integrated_time,
    }))
}

/// The bytes Rekor signs for a SET: canonical JSON with sorted keys.
pub fn set_payload(entry: &LogEntry) -> Vec<u8> {
    let payload = serde_json::json!({
        "body": b64_encode(&entry.body),
        "integratedTime": entry.integrated_time,
        "logID": hex(&entry.log_id),
        "logIndex": entry.log_index,
    });
    // Keys are inserted in sorted order, so the output is canonical whether or
    // not serde_json's map preserves insertion order.
    serde_json::to_vec(&payload).unwrap_or_default()
}

fn verify_set(entry: &LogEntry, set: &[u8], log: &LogKey) -> Result<(), String> {
    log.key
        .verify(&set_payload(entry), set)
        .map_err(|_| "signed entry timestamp does not verify with the log's key".to_owned())
}

fn verify_inclusion(body: &[u8], proof: &InclusionProof, log: &LogKey) -> Result<(), String> {
    let leaf = leaf_hash(body);
    let hashes = proof
        .hashes
        .iter()
        .map(|h| {
            <[u8; 32]>::try_from(h.as_slice())
                .map_err(|_| "inclusion proof hash is not 32 bytes".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root = root_from_inclusion_proof(proof.log_index, proof.tree_size, leaf, &hashes)?;
    if root.as_slice() != proof.root_hash.as_slice() {
        return Err("inclusion proof does not lead to the stated root hash".into());
    }
    let checkpoint = proof
        .checkpoint
        .as_deref()
        .ok_or("inclusion proof has no checkpoint, so its root hash is unauthenticated")?;
    let (size, root_hash) = verify_checkpoint(checkpoint, log)?;
    if size != proof.tree_size || root_hash != proof.root_hash {
        return Err("checkpoint does not commit to the inclusion proof's tree".into());
    }
    Ok(())
}

/// RFC 6962 leaf hash.
pub fn leaf_hash(body: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(body)
        .finalize()
        .into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Recomputes the root of a tree of `size` leaves from leaf `index`'s hash and
/// its audit path (RFC 9162 section 2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
) -> Result<[u8; 32], String> {
    if index >= size {
        return Err(format!(
            "inclusion proof index {index} is outside a tree of size {size}"
        ));
    }
    if proof.len() > PROOF_HASHES_MAX {
        return Err(format!(
            "inclusion proof has more than {PROOF_HASHES_MAX} hashes"
        ));
    }
    // Levels below the point where the paths to `index` and to the last leaf part.
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    if proof.len() != inner + border {
        return Err(format!(
            "inclusion proof has {} hashes, a tree of size {size} needs {} for index {index}",
            proof.len(),
            inner + border
        ));
    }
    let mut hash = leaf;
    for (level, sibling) in proof[..inner].iter().enumerate() {
        hash = if (index >> level) & 1 == 0 {
            node_hash(&hash, sibling)
        } else {
            node_hash(sibling, &hash)
        };
    }
    for sibling in &proof[inner..] {
        hash = node_hash(sibling, &hash);
    }
    Ok(hash)
}

/// Verifies a signed checkpoint (a "signed note") with the log key and returns
/// the (tree size, root hash) it commits to.
pub fn verify_checkpoint(note: &str, log: &LogKey) -> Result<(u64, Vec<u8>), String> {
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or("checkpoint has no signature block")?;
    let signed = format!("{text}\n");
    let verified = signatures
        .lines()
        .take(CHECKPOINT_SIGNATURES_MAX)
        .filter_map(|line| line.strip_prefix("\u{2014} "))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(_, b64)| b64_decode(b64).ok())
        .filter(|raw| raw.len() > 4)
        .any(|raw| log.key.verify(signed.as_bytes(), &raw[4..]).is_ok());
    if !verified {
        return Err("checkpoint is not signed by the log's key".into());
    }
    let mut lines = text.lines();
    let _origin = lines.next().ok_or("checkpoint has no origin line")?;
    let size = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("checkpoint tree size is not a number")?;
    let root = lines
        .next()
        .and_then(|l| b64_decode(l).ok())
        .ok_or("checkpoint root hash is not base64")?;
    Ok((size, root))
}

/// Why a log entry from a configured log was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// The evidence is wrong: forged, tampered, or about another signature.
    Invalid(String),
    /// An entry kind Ward cannot check yet.
    Unsupported(String),
}

impl From<String> for EntryError {
    fn from(detail: String) -> Self {
        EntryError::Invalid(detail)
    }
}

impl From<&str> for EntryError {
    fn from(detail: &str) -> Self {
        EntryError::Invalid(detail.to_owned())
    }
}

/// Rekor v1 `hashedrekord` and `dsse` entries are understood; Rekor v2 entries
/// carry no SET and need RFC 3161 timestamps for a signing time, which Ward
/// does not check yet.
fn check_kind(body: &[u8]) -> Result<(), EntryError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("log entry body is not JSON: {e}"))?;
    let kind = body["kind"].as_str().unwrap_or_default();
    let version = body["apiVersion"].as_str().unwrap_or_default();
    match (kind, version) {
        ("hashedrekord", "0.0.1") | ("dsse", "0.0.1") => Ok(()),
        _ => Err(EntryError::Unsupported(format!(
            "transparency-log entry kind {kind:?} version {version:?} (Ward checks Rekor v1 hashedrekord and dsse 0.0.1 entries)"
        ))),
    }
}

/// Checks that the entry body commits to this signature, key and content.
fn check_body(body: &[u8], binding: &Binding<'_>) -> Result<(), String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("log entry body is not JSON: {e}"))?;
    let kind = body["kind"].as_str().unwrap_or_default();
    let version = body["apiVersion"].as_str().unwrap_or_default();
    let spec = &body["spec"];
    match (kind, version, binding.content) {
        ("hashedrekord", "0.0.1", SignedContent::Artifact(digest)) => {
            expect_sha256(&spec["data"]["hash"], &digest, "artifact")?;
            expect_b64(
                &spec["signature"]["content"],
                binding.signature,
                "signature",
            )?;
            expect_pem(
                &spec["signature"]["publicKey"]["content"],
                binding.verifier_der,
            )
        }
        ("dsse", "0.0.1", SignedContent::DssePayload(digest)) => {
            expect_sha256(&spec["payloadHash"], &digest, "DSSE payload")?;
            let signatures = spec["signatures"]
                .as_array()
                .ok_or("dsse entry has no signatures")?;
            let found = signatures.iter().any(|s| {
                expect_b64(&s["signature"], binding.signature, "signature").is_ok()
                    && expect_pem(&s["verifier"], binding.verifier_der).is_ok()
            });
            found
                .then_some(())
                .ok_or_else(|| "dsse entry does not record this signature and signer".to_owned())
        }
        _ => Err(format!(
            "log entry kind {kind:?} version {version:?} does not fit this signature"
        )),
    }
}

fn expect_sha256(hash: &Value, digest: &[u8; 32], what: &str) -> Result<(), String> {
    if hash["algorithm"].as_str() != Some("sha256")
        || hash["value"].as_str() != Some(hex(digest).as_str())
    {
        return Err(format!("log entry records another {what} digest"));
    }
    Ok(())
}

fn expect_b64(value: &Value, expected: &[u8], what: &str) -> Result<(), String> {
    let found = value.as_str().and_then(|s| b64_decode(s).ok());
    (found.as_deref() == Some(expected))
        .then_some(())
        .ok_or_else(|| format!("log entry records another {what}"))
}

fn expect_pem(value: &Value, expected_der: &[u8]) -> Result<(), String> {
    let pem = value
        .as_str()
        .and_then(|s| b64_decode(s).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let der = pem.as_deref().and_then(|p| pem_decode(p).ok());
    (der.as_ref().map(|b| &b.contents[..]) == Some(expected_der))
        .then_some(())
        .ok_or_else(|| "log entry records another signing key or certificate".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the full tree bottom-up (RFC 6962 MTH) to check proofs against.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        let k = if k == leaves.len() { k / 2 } else { k };
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    fn path(index: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = leaves.len().next_power_of_two() / 2;
        let k = if k == leaves.len() { k / 2 } else { k };
        if index < k {
            let mut p = path(index, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(index - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn inclusion_proofs_agree_with_the_tree_for_every_index_and_size() {
        let leaves: Vec<[u8; 32]> = (0..13u8).map(|i| leaf_hash(&[i])).collect();
        for size in 1..=leaves.len() {
            let tree = &leaves[..size];
            let root = mth(tree);
            for index in 0..size {
                let proof = path(index, tree);
                let got = root_from_inclusion_proof(index as u64, size as u64, tree[index], &proof)
                    .unwrap();
                assert_eq!(got, root, "index {index} size {size}");
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    let got =
                        root_from_inclusion_proof(index as u64, size as u64, tree[index], &bad)
                            .unwrap();
                    assert_ne!(got, root);
                }
            }
        }
    }

    #[test]
    fn malformed_proofs_are_errors() {
        let leaf = leaf_hash(b"x");
        assert!(root_from_inclusion_proof(5, 5, leaf, &[]).is_err());
        assert!(root_from_inclusion_proof(0, 2, leaf, &[]).is_err());
        assert!(root_from_inclusion_proof(0, 1, leaf, &[leaf]).is_err());
    }
}
