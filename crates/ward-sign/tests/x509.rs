#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Certificate chain rules, with chains made by the openssl CLI.

mod common;

use common::TestCa;
use ward_sign::time::now;
use ward_sign::x509::{Certificate, ChainError, verify_chain};

const LEAF: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:a@example.com\n";
const SUB_CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";

fn cert(path: &std::path::Path) -> Certificate {
    Certificate::from_pem_chain(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0)
}

fn check(ca: &TestCa, leaf: &std::path::Path, intermediates: &[&str]) -> Result<(), ChainError> {
    let intermediates: Vec<Certificate> = intermediates
        .iter()
        .map(|n| cert(&ca.dir.path().join(format!("{n}.pem"))))
        .collect();
    let root = cert(&ca.dir.path().join("root.pem"));
    verify_chain(&cert(leaf), &intermediates, &[root], now())
}

fn untrusted(result: Result<(), ChainError>, needle: &str) {
    match result {
        Err(ChainError::Untrusted(detail)) => assert!(
            detail.contains(needle),
            "{detail:?} should mention {needle:?}"
        ),
        other => panic!("expected untrusted ({needle}), got {other:?}"),
    }
}

#[test]
fn chain_rules() {
    let ca = TestCa::new();
    let (_, good) = ca.issue("intermediate", "good", LEAF, 30);
    assert_eq!(check(&ca, &good, &["intermediate"]), Ok(()));
    untrusted(check(&ca, &good, &[]), "no trusted root issued");

    let (_, direct) = ca.issue("root", "direct", LEAF, 30);
    assert_eq!(
        check(&ca, &direct, &[]),
        Ok(()),
        "a leaf issued by the root itself"
    );

    ca.issue("root", "not-ca", "basicConstraints=critical,CA:FALSE\n", 30);
    let (_, under_not_ca) = ca.issue("not-ca", "under-not-ca", LEAF, 30);
    untrusted(check(&ca, &under_not_ca, &["not-ca"]), "is not a CA");

    // The test intermediate has pathlen:0, so it may not issue another CA.
    ca.issue("intermediate", "sub", SUB_CA, 30);
    let (_, under_sub) = ca.issue("sub", "under-sub", LEAF, 30);
    untrusted(
        check(&ca, &under_sub, &["intermediate", "sub"]),
        "path length",
    );

    let (_, server) = ca.issue(
        "intermediate",
        "server",
        "extendedKeyUsage=serverAuth\n",
        30,
    );
    untrusted(check(&ca, &server, &["intermediate"]), "code signing");
    let (_, encipher) = ca.issue(
        "intermediate",
        "encipher",
        "keyUsage=critical,keyEncipherment\n",
        30,
    );
    untrusted(
        check(&ca, &encipher, &["intermediate"]),
        "digital signatures",
    );
    let (_, unknown) = ca.issue(
        "intermediate",
        "unknown",
        "1.2.3.4=critical,ASN1:NULL\n",
        30,
    );
    untrusted(
        check(&ca, &unknown, &["intermediate"]),
        "unknown critical extension",
    );
}

#[test]
fn validity_is_checked_for_every_certificate_on_the_path() {
    let ca = TestCa::new();
    // openssl lets a leaf outlive its issuer; the verifier must not.
    ca.issue(
        "root",
        "short-ca",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
        1,
    );
    let (_, leaf) = ca.issue("short-ca", "leaf", LEAF, 30);
    let root = cert(&ca.dir.path().join("root.pem"));
    let short_ca = cert(&ca.dir.path().join("short-ca.pem"));
    let leaf = cert(&leaf);
    assert_eq!(
        verify_chain(
            &leaf,
            std::slice::from_ref(&short_ca),
            std::slice::from_ref(&root),
            now()
        ),
        Ok(())
    );
    match verify_chain(
        &leaf,
        std::slice::from_ref(&short_ca),
        std::slice::from_ref(&root),
        now() + 2 * 86_400,
    ) {
        Err(ChainError::Expired { subject, .. }) => {
            assert!(subject.contains("short-ca"), "{subject}")
        }
        other => panic!("the expired intermediate went unnoticed: {other:?}"),
    }
    assert!(matches!(
        verify_chain(&leaf, &[short_ca], &[root], now() - 86_400),
        Err(ChainError::Expired { .. })
    ));
}

#[test]
fn identities_come_from_the_san_and_fulcio_extensions() {
    let ca = TestCa::new();
    let (_, leaf) = ca.leaf("alice", "alice@example.com", "https://accounts.example", 1);
    let leaf = cert(&leaf);
    assert_eq!(leaf.subject_alt_names(), ["alice@example.com"]);
    assert_eq!(
        leaf.oidc_issuer().as_deref(),
        Some("https://accounts.example")
    );
    // Fulcio's legacy 1.1 extension holds the raw string, not DER.
    let (_, legacy) = ca.issue(
        "intermediate",
        "legacy",
        &format!(
            "{LEAF}1.3.6.1.4.1.57264.1.1=DER:{}\n",
            hex_colons(b"https://legacy.example")
        ),
        1,
    );
    assert_eq!(
        cert(&legacy).oidc_issuer().as_deref(),
        Some("https://legacy.example")
    );
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Intermediates crafted alike (one subject, one key, CA without a path
/// length, each self-signed) each issue every other: the chain search must
/// give up after a bounded number of signature checks instead of trying
/// every ordering of them.
#[test]
fn a_maze_of_look_alike_intermediates_is_searched_within_a_budget() {
    let ca = TestCa::new();
    let dir = ca.dir.path();
    common::run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "maze.key",
        ],
        dir,
    );
    let mut maze = Vec::new();
    for serial in 1..=8 {
        let name = format!("maze{serial}.pem");
        common::run(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "maze.key",
                "-subj",
                "/O=Ward tests/CN=Maze",
                "-set_serial",
                &serial.to_string(),
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
                "-out",
                &name,
            ],
            dir,
        );
        maze.push(cert(&dir.join(name)));
    }
    std::fs::write(dir.join("lost.ext"), LEAF).unwrap();
    common::run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "maze.key",
            "-subj",
            "/O=Ward tests/CN=Lost",
            "-out",
            "lost.csr",
        ],
        dir,
    );
    common::run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "lost.csr",
            "-CA",
            "maze1.pem",
            "-CAkey",
            "maze.key",
            "-set_serial",
            "99",
            "-days",
            "30",
            "-extfile",
            "lost.ext",
            "-out",
            "lost.pem",
        ],
        dir,
    );
    let root = cert(&dir.join("root.pem"));
    let result = verify_chain(&cert(&dir.join("lost.pem")), &maze, &[root], now());
    untrusted(result, "gave up looking for a certificate chain");
}
