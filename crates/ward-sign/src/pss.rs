//! The mission's own model-signing scheme, for teams that already use it.
//!
//! The signed message is the ASCII lowercase hex sha256 of the model file (64
//! bytes, no newline); the signature is RSA-PSS with SHA-256, MGF1-SHA-256 and
//! the maximum salt length, exactly what Python `cryptography` produces with
//! `padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)`.
//! Verification accepts any salt length, which is no weaker.

use rsa::signature::RandomizedSigner as _;
use rsa::traits::PublicKeyParts as _;
use sha2::Sha256;
use ward_core::Digest;

use crate::keys::{BadSignature, KeyError, PrivateKey, PublicKey, SignatureScheme};

/// Media type Ward gives a raw RSA-PSS model signature stored as an OCI blob.
pub const RSA_PSS_SIGNATURE_MEDIA_TYPE: &str = "application/vnd.ward.signature.rsa-pss-sha256.v1";

/// Length in bytes of the sha256 output.
const SHA256_BYTES: usize = 32;

/// The exact bytes the scheme signs for a model whose sha256 is `digest`.
pub fn signed_message(digest: &Digest) -> String {
    digest.hex()
}

/// Signs the model digest. The key must be RSA.
pub fn sign(key: &PrivateKey, digest: &Digest) -> Result<Vec<u8>, KeyError> {
    let rsa_key = key.rsa().ok_or_else(|| {
        KeyError::Unsupported(format!(
            "{} key for RSA-PSS (an RSA key is required)",
            key.public_key().algorithm_name()
        ))
    })?;
    let em_bits = rsa_key.n().bit_width() as usize - 1;
    let salt_len = em_bits.div_ceil(8) - SHA256_BYTES - 2;
    let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(rsa_key.clone(), salt_len);
    let signature = signer
        .try_sign_with_rng(&mut getrandom::SysRng, signed_message(digest).as_bytes())
        .map_err(|e| KeyError::Sign(e.to_string()))?;
    Ok(Box::<[u8]>::from(signature).to_vec())
}

/// Verifies a signature made by [`sign`] or by the mission's Python code.
pub fn verify(key: &PublicKey, digest: &Digest, signature: &[u8]) -> Result<(), BadSignature> {
    key.verify_with(
        SignatureScheme::RsaPssSha256,
        signed_message(digest).as_bytes(),
        signature,
    )
}

/// Verifies a raw RSA-PSS signature as evidence: the signed hex must be the
/// subject's digest or, for a single-file model, that file's sha256.
pub(crate) fn verify_evidence(
    signature: &[u8],
    subject: &crate::verify::Subject<'_>,
    trust: &crate::verify::TrustMaterial,
    ctx: &crate::verify::Context,
) -> Result<crate::verify::Verified, crate::verify::Rejection> {
    use crate::verify::{Claim, Material, Rejection, SignatureFormat, verify_claim};
    let mut candidates: Vec<Digest> = subject.digest.into_iter().collect();
    if let Some(model) = subject.model {
        // Only a model that is that one file: anything it holds beside it
        // (a layer without a title, one that cannot be read) is unsigned.
        let files = model.files(&[], false, &ctx.limits);
        if let ([(_, digest)], true) = (
            files.files.iter().collect::<Vec<_>>().as_slice(),
            files.problems.is_empty(),
        ) {
            candidates.push(**digest);
        }
    }
    let Some(first) = candidates.first().copied() else {
        return Err(Rejection::Unsupported {
            detail: "an RSA-PSS signature covers one file's sha256, and neither a digest nor a single-file model was given".into(),
        });
    };
    let Some(first_sha256) = first.sha256_bytes() else {
        return Err(Rejection::Unsupported {
            detail: "an RSA-PSS signature covers a sha256; this digest is of another algorithm"
                .into(),
        });
    };
    verify_claim(
        Claim {
            format: SignatureFormat::RsaPss,
            material: Material::TrustedKeys,
            signature,
            verifies: &|key| candidates.iter().any(|d| verify(key, d, signature).is_ok()),
            entries: &[],
            content: crate::tlog::SignedContent::Artifact(first_sha256),
            docker_reference: None,
        },
        trust,
        ctx,
    )
}
