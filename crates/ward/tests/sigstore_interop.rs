//! Interop with sigstore-rs (the `sigstore` crate, the Sigstore project's Rust
//! cosign), live against a running Ward, in both directions:
//!
//! - sigstore-rs signs an artifact pushed to Ward and uploads the
//!   `sha256-<hex>.sig` signature itself; `ward gate` and a trust policy on
//!   pull accept it (and refused the artifact before).
//! - `ward sign` signs; sigstore-rs fetches the signature layers from Ward and
//!   verifies them with the public key, and not with another key.
//!
//! The keys are made by `ward key generate` (cosign's encrypted format) and
//! read by sigstore-rs, so key-format interop is exercised too. sigstore-rs
//! talks plain HTTP to the loopback server with the administrator's Basic
//! credentials, which its OCI client trades for a bearer token at Ward's
//! token endpoint (Ward challenges with `Bearer realm=.../token`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use sigstore::cosign::constraint::PrivateKeySigner;
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{Constraint, CosignCapabilities, SignatureLayer, verify_constraints};
use sigstore::crypto::SigningScheme;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use zeroize::Zeroizing;

/// A sigstore-rs cosign client for a plain-HTTP registry.
fn cosign_client() -> sigstore::cosign::Client {
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    };
    sigstore::cosign::ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .unwrap()
}

fn admin_auth() -> Auth {
    Auth::Basic("admin".into(), ADMIN_PASSWORD.into())
}

/// sigstore-rs is async; the rest of the test drives processes and blocking HTTP.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn verifier(public_key: &Path) -> VerificationConstraintVec {
    let pem = std::fs::read(public_key).unwrap();
    vec![Box::new(PublicKeyVerifier::try_from(&pem).unwrap())]
}

/// A trust policy: `prod/**` is served to consumers only when signed by `public_key`.
fn release_policy(server: &WardProcess, work: &Path, public_key: &Path) {
    let policy = serde_json::json!({
        "keys": [{
            "name": "release",
            "public_key": std::fs::read_to_string(public_key).unwrap(),
        }],
        "rules": [{
            "name": "production",
            "repositories": ["prod/**"],
            "keys": ["release"],
        }],
    });
    put_trust_policy(server, work, &policy);
}

#[test]
fn sigstore_rs_signs_an_artifact_in_ward_and_wards_gates_accept_it() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let release = generate_key(work.path(), "release");
    let other = generate_key(work.path(), "other");
    release_policy(&server, work.path(), &release.with_extension("pub"));
    let deployer = create_robot(&server, "deployer", "read=prod/**");
    let model = work.path().join("model.safetensors");
    std::fs::write(&model, b"weights signed by sigstore-rs").unwrap();
    let digest = push_file(&server, "prod/model:v1", &model);
    let reference = format!("{}/prod/model:v1", server.addr);
    let manifest_path = "/v2/prod/model/manifests/v1";

    // Unsigned: the gate refuses, and so does a consumer's pull.
    let (code, decision) = gate(&reference, &release.with_extension("pub"));
    assert_eq!(code, Some(1), "{decision}");
    assert_eq!(decision["decision"], "refuse", "{decision}");
    let (status, body) = get_as(&server, &deployer, manifest_path, "sigstore-test");
    assert_eq!(status, 403, "{body}");

    // sigstore-rs signs with the key `ward key generate` made and pushes the
    // signature to Ward, as its cosign `sign` example does.
    let rt = runtime();
    let mut client = cosign_client();
    let image: OciReference = reference.parse().unwrap();
    let (signature_image, image_digest) = rt
        .block_on(client.triangulate(&image, &admin_auth()))
        .unwrap();
    assert_eq!(image_digest, digest);
    let expected_tag = format!("{}.sig", digest.replace(':', "-"));
    assert_eq!(signature_image.tag(), Some(expected_tag.as_str()));
    let mut layer = SignatureLayer::new_unsigned(&image, &image_digest).unwrap();
    let signer = PrivateKeySigner::new_with_raw(
        Zeroizing::new(std::fs::read(release.with_extension("key")).unwrap()),
        Zeroizing::new(KEY_PASSWORD.as_bytes().to_vec()),
        &SigningScheme::ECDSA_P256_SHA256_ASN1,
    )
    .unwrap();
    assert!(signer.add_constraint(&mut layer).unwrap());
    rt.block_on(client.push_signature(None, &admin_auth(), &signature_image, vec![layer]))
        .unwrap();

    // The signature is where cosign puts it, in Ward's own listing.
    let tags: Value = admin_http()
        .get(server.url("/v2/prod/model/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str() == Some(expected_tag.as_str())),
        "{tags}"
    );

    // Signed: the gate allows the artifact, on the sigstore-rs signature.
    let (code, decision) = gate(&reference, &release.with_extension("pub"));
    assert_eq!(code, Some(0), "{decision}");
    assert_eq!(decision["decision"], "allow", "{decision}");
    assert_eq!(decision["digest"], digest.as_str(), "{decision}");
    let sources: Vec<&str> = decision["signatures"]["verified_signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.iter().any(|s| s.starts_with(&expected_tag)),
        "{decision}"
    );
    // Another key is not satisfied by it.
    let (code, decision) = gate(&reference, &other.with_extension("pub"));
    assert_eq!(code, Some(1), "{decision}");

    // The trust policy now serves the artifact to the consumer.
    let (status, body) = get_as(&server, &deployer, manifest_path, "sigstore-test");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_as(
        &server,
        &deployer,
        &format!("/v2/prod/model/manifests/{digest}"),
        "sigstore-test",
    );
    assert_eq!(status, 200, "{body}");

    // And the consumer, through sigstore-rs with its robot credentials, can
    // read the signature back from the protected repository and verify it.
    let consumer_auth = Auth::Basic(deployer.0.clone(), deployer.1.clone());
    let layers = rt
        .block_on(cosign_client().trusted_signature_layers(&consumer_auth, &image))
        .unwrap();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let release_key = verifier(&release.with_extension("pub"));
    verify_constraints(&layers, release_key.iter()).unwrap();
}

#[test]
fn sigstore_rs_verifies_the_signatures_ward_sign_writes() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let trusted = generate_key(work.path(), "trusted");
    let other = generate_key(work.path(), "other");
    let file = work.path().join("tool.bin");
    std::fs::write(&file, b"a tool signed by ward").unwrap();
    let digest = push_file(&server, "interop/tool:v1", &file);
    let reference = format!("{}/interop/tool:v1", server.addr);
    let image: OciReference = reference.parse().unwrap();
    let trusted_key = verifier(&trusted.with_extension("pub"));
    let other_key = verifier(&other.with_extension("pub"));
    let rt = runtime();

    // Nothing to verify before `ward sign`: no layers, so no key is satisfied.
    let layers = rt
        .block_on(cosign_client().trusted_signature_layers(&admin_auth(), &image))
        .unwrap();
    assert!(layers.is_empty(), "{layers:?}");
    assert!(verify_constraints(&layers, trusted_key.iter()).is_err());

    let out = ward_with(
        &[
            "sign",
            &reference,
            "--key",
            trusted.with_extension("key").to_str().unwrap(),
            "--json",
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    );
    assert_ok(&out);
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(signed["digest"], digest.as_str());

    // sigstore-rs fetches the signature layers from Ward (the `.sig` tag, and
    // the OCI referrers it understands) and checks they sign this digest.
    let layers = rt
        .block_on(cosign_client().trusted_signature_layers(&admin_auth(), &image))
        .unwrap();
    let from_tag: Vec<&SignatureLayer> = layers.iter().filter(|l| l.bundle.is_none()).collect();
    assert_eq!(from_tag.len(), 1, "the .sig tag's layer: {layers:?}");
    for layer in &layers {
        assert_eq!(
            layer.simple_signing.critical.image.docker_manifest_digest,
            digest
        );
    }

    // The trusted key verifies them; another key does not.
    verify_constraints(&layers, trusted_key.iter()).unwrap();
    let from_tag_only: Vec<SignatureLayer> = from_tag.into_iter().cloned().collect();
    verify_constraints(&from_tag_only, trusted_key.iter()).unwrap();
    let refused = verify_constraints(&layers, other_key.iter()).unwrap_err();
    assert_eq!(refused.unsatisfied_constraints.len(), 1);
}
