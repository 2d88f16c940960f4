#![allow(clippy::unwrap_used, clippy::expect_used)]
//! cosign's encrypted key format against an independent implementation: the
//! fixture producer's Python (PyNaCl + cryptography) writes keys Ward reads, and
//! opens keys Ward writes. Needs the venv (crates/ward-sign/requirements-test.txt).

mod common;

use common::{cosign_fixture_dir, run, venv_python};
use ward_sign::keys::{KeyAlgorithm, PrivateKey, PublicKey};

/// Opens a cosign key the way go-securesystemslib does and prints the SPKI PEM.
const OPEN_KEY: &str = r#"
import base64, json, sys
from nacl.secret import SecretBox
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
pem = open(sys.argv[1]).read().strip().splitlines()
assert pem[0] in ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"), pem[0]
doc = json.loads(base64.b64decode("".join(pem[1:-1])))
p = doc["kdf"]["params"]
key = Scrypt(salt=base64.b64decode(doc["kdf"]["salt"]), length=32, n=p["N"], r=p["r"], p=p["p"]).derive(sys.argv[2].encode())
der = SecretBox(key).decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
private = serialization.load_der_private_key(der, None)
sys.stdout.write(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
"#;

#[test]
fn keys_written_by_ward_open_in_the_reference_implementation() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("open_key.py"), OPEN_KEY).unwrap();
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let key = PrivateKey::generate(algorithm).unwrap();
        std::fs::write(
            tmp.path().join("ward.key"),
            key.to_encrypted_pem(b"s3cret").unwrap().as_bytes(),
        )
        .unwrap();
        let python = venv_python();
        let public = run(
            python.to_str().unwrap(),
            &["open_key.py", "ward.key", "s3cret"],
            tmp.path(),
        );
        assert_eq!(
            PublicKey::from_pem(&public).unwrap(),
            *key.public_key(),
            "{algorithm:?}"
        );
    }
}

#[test]
fn keys_written_by_the_fixture_producer_open_in_ward() {
    let tmp = tempfile::tempdir().unwrap();
    let producer = cosign_fixture_dir().join("producer/gen_cosign_key.py");
    let python = venv_python();
    run(
        python.to_str().unwrap(),
        &[producer.to_str().unwrap(), ".", "producer-password"],
        tmp.path(),
    );
    let pem = std::fs::read_to_string(tmp.path().join("cosign.key")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"));
    let key = PrivateKey::from_pem(&pem, Some(b"producer-password")).unwrap();
    let public =
        PublicKey::from_pem(&std::fs::read_to_string(tmp.path().join("cosign.pub")).unwrap())
            .unwrap();
    assert_eq!(key.public_key(), &public);
}
