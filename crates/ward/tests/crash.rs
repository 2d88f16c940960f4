//! Killing the server at awkward moments leaves nothing partial visible, and
//! chunked uploads resume where they stopped after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{WardProcess, admin_http, basic_header_line, files_under};
use ward_core::Digest;

fn blob_status(server: &WardProcess, repo: &str, d: &Digest) -> u16 {
    admin_http()
        .head(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Sends an HTTP/1.1 request head with a declared body length, then part of
/// the body, and leaves the connection open.
fn start_streaming_put(addr: &str, path: &str, declared: usize, sent: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\n{}Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n",
        basic_header_line()
    )
    .unwrap();
    s.write_all(sent).unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn kill_during_a_blob_push_leaves_nothing_partial() {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let server = WardProcess::start(&data_dir, &[]);
    let client = admin_http();
    let data: Vec<u8> = (0..40_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let digest = Digest::of(&data);

    let r = client
        .post(server.url("/v2/crash/app/blobs/uploads/"))
        .send()
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    // Half the blob is on the wire, and its body never completes: the server
    // dies mid-stream.
    let mut stream = start_streaming_put(
        &server.addr,
        &format!("{location}?digest={digest}"),
        data.len(),
        &data[..20_000_000],
    );
    let status = client.get(server.url(&location)).send().unwrap();
    assert_eq!(status.status().as_u16(), 204);
    server.kill();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);

    // Nothing is visible under the digest, and no blob file exists for it.
    let server = WardProcess::start(&data_dir, &[]);
    assert_eq!(blob_status(&server, "crash/app", &digest), 404);
    let blobs = files_under(&data_dir.join("blobs/blobs"));
    assert!(
        blobs
            .iter()
            .all(|p| !p.to_string_lossy().contains(&digest.hex())),
        "no partial blob: {blobs:?}"
    );
    // The session survived at its last committed offset (zero) and can be finished.
    let r = client.get(server.url(&location)).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers()["range"], "0-0");
    let r = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        client
            .get(server.url(&format!("/v2/crash/app/blobs/{digest}")))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len(),
        data.len()
    );
}

#[test]
fn a_chunked_upload_resumes_after_a_kill() {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let server = WardProcess::start(&data_dir, &[]);
    let client = admin_http();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let r = client
        .post(server.url("/v2/crash/resume/blobs/uploads/"))
        .send()
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = client
        .patch(server.url(&location))
        .header("content-range", "0-999999")
        .header("content-length", "1000000")
        .body(data[..1_000_000].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // Die in the middle of the second chunk.
    let mut stream = start_streaming_put(
        &server.addr,
        &location,
        1_000_000,
        &data[1_000_000..1_500_000],
    );
    server.kill();
    let _ = stream.read_to_end(&mut Vec::new());

    let server = WardProcess::start(&data_dir, &[]);
    let r = client.get(server.url(&location)).send().unwrap();
    assert_eq!(
        r.headers()["range"],
        "0-999999",
        "resumes after the last whole chunk"
    );
    let digest = Digest::of(&data);
    let r = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .header("content-range", "1000000-2999999")
        .header("content-length", "2000000")
        .body(data[1_000_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        client
            .get(server.url(&format!("/v2/crash/resume/blobs/{digest}")))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
        data
    );
}

#[test]
fn kill_during_manifest_pushes_leaves_no_dangling_reference() {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let server = WardProcess::start(&data_dir, &[]);
    let client = admin_http();
    // Push a config blob, then fire manifest pushes and kill the server among them.
    let config = b"{}".to_vec();
    let cd = Digest::of(&config);
    let r = client
        .post(server.url(&format!("/v2/crash/m/blobs/uploads/?digest={cd}")))
        .body(config)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let addr = server.addr.clone();
    let pushes = std::thread::spawn(move || {
        let client = admin_http();
        for i in 0..200 {
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":2}},"layers":[],"annotations":{{"i":"{i}"}}}}"#
            );
            let sent = client
                .put(format!("http://{addr}/v2/crash/m/manifests/t{i}"))
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(m)
                .send();
            if sent.is_err() {
                return i;
            }
        }
        200
    });
    // Wait until some pushes have landed, then kill.
    while client
        .get(server.url("/v2/crash/m/tags/list"))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .map(|v| v["tags"].as_array().map_or(0, Vec::len))
        .unwrap_or(0)
        < 5
    {
        std::thread::yield_now();
    }
    server.kill();
    let attempted = pushes.join().unwrap();
    assert!(attempted < 200, "the kill interrupted the pushes");

    let server = WardProcess::start(&data_dir, &[]);
    let tags: serde_json::Value = client
        .get(server.url("/v2/crash/m/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for tag in tags["tags"].as_array().unwrap() {
        let tag = tag.as_str().unwrap();
        let r = client
            .get(server.url(&format!("/v2/crash/m/manifests/{tag}")))
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "tag {tag} resolves to a whole manifest"
        );
        let body = r.bytes().unwrap();
        let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            blob_status(
                &server,
                "crash/m",
                &m["config"]["digest"].as_str().unwrap().parse().unwrap()
            ),
            200
        );
    }
}
