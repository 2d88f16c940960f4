//! The OCI Distribution API through the real router, over TCP, on SQLite and
//! PostgreSQL: every endpoint, every error code, and the spec's sharp edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestRegistry, error_code, expect_error, header, image_manifest};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use serde_json::Value;
use ward_core::digest::Algorithm;
use ward_core::{Digest, media};

both_backends!(ping_answers_with_an_empty_object, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), "{}");
    assert_eq!(reg.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(reg.get("/readyz").await.status(), StatusCode::OK);
    reg.stop().await;
});

both_backends!(blobs_round_trip_with_ranges, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let bytes: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let d = reg.push_blob("team/app", &bytes).await;
    let path = format!("/v2/team/app/blobs/{d}");

    let r = reg.head(&path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "2048");
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");

    let r = reg.get(&path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    assert_eq!(r.bytes().await.unwrap(), bytes);

    for (range, start, end) in [
        ("bytes=500-1499", 500, 1500),
        ("bytes=500-", 500, 2048),
        ("bytes=-500", 1548, 2048),
        ("bytes=2000-5000", 2000, 2048),
    ] {
        let r = reg
            .client
            .get(reg.url(&path))
            .header(RANGE, range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {start}-{}/2048", end - 1)
        );
        assert_eq!(header(&r, "content-length"), (end - start).to_string());
        assert_eq!(r.bytes().await.unwrap(), &bytes[start..end], "{range}");
    }
    for range in ["bytes=500-0", "bytes=5000-10000"] {
        let r = reg
            .client
            .get(reg.url(&path))
            .header(RANGE, range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&r, "content-range"), "bytes */2048");
    }
    reg.stop().await;
});

both_backends!(
    blobs_do_not_leak_across_repositories,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let d = reg.push_blob("team-a/x", b"secret layer").await;
        expect_error(
            reg.get(&format!("/v2/team-b/y/blobs/{d}")).await,
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
        )
        .await;
        assert_eq!(
            reg.head(&format!("/v2/team-b/y/blobs/{d}")).await.status(),
            StatusCode::NOT_FOUND
        );

        // Mount by digest alone (no `from`) must not find it: it falls back to a session.
        let r = reg
            .client
            .post(reg.url(&format!("/v2/team-b/y/blobs/uploads/?mount={d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        // Mounting from a repository that lacks it falls back too.
        let r = reg
            .client
            .post(reg.url(&format!(
                "/v2/team-b/y/blobs/uploads/?mount={d}&from=team-c/z"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert!(header(&r, "location").contains("/blobs/uploads/"));
        // A mount from the repository that has it succeeds.
        let r = reg
            .client
            .post(reg.url(&format!(
                "/v2/team-b/y/blobs/uploads/?mount={d}&from=team-a/x"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "location"), format!("/v2/team-b/y/blobs/{d}"));
        assert_eq!(header(&r, "docker-content-digest"), d.to_string());
        assert_eq!(
            reg.get(&format!("/v2/team-b/y/blobs/{d}"))
                .await
                .bytes()
                .await
                .unwrap(),
            &b"secret layer"[..]
        );
        reg.stop().await;
    }
);

both_backends!(
    bad_names_and_digests_get_precise_errors,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let d = Digest::of(b"x");
        let long = "a".repeat(256);
        for path in [
            format!("/v2/Upper/blobs/{d}"),
            format!("/v2/{long}/blobs/{d}"),
            "/v2/a..b/manifests/v1".to_owned(),
            "/v2/-x/tags/list".to_owned(),
        ] {
            expect_error(
                reg.get(&path).await,
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
            )
            .await;
        }
        expect_error(
            reg.get("/v2/ok/blobs/sha256:nothex").await,
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        )
        .await;
        expect_error(
            reg.get("/v2/ok/manifests/sha256:baddigeststring").await,
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        )
        .await;
        // No manifest can have a tag that breaks the grammar: reads and deletes
        // answer 404, as distribution and the conformance suite do; pushes
        // keep TAG_INVALID (`manifest_pushes_are_validated`).
        for path in [
            "/v2/ok/manifests/-bad-tag",
            "/v2/ok/manifests/.INVALID_MANIFEST_NAME",
        ] {
            expect_error(
                reg.get(path).await,
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
            )
            .await;
            assert_eq!(
                reg.head(path).await.status(),
                StatusCode::NOT_FOUND,
                "HEAD {path}"
            );
        }
        expect_error(
            reg.get(&format!("/v2/ok/blobs/{d}")).await,
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
        )
        .await;
        expect_error(
            reg.get("/v2/nope/manifests/v1").await,
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
        )
        .await;
        expect_error(
            reg.get("/v2/nope/tags/list").await,
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
        )
        .await;
        let r = reg
            .client
            .patch(reg.url("/v2/ok/manifests/v1"))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
        reg.stop().await;
    }
);

both_backends!(a_wrong_digest_stores_nothing, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let claimed = Digest::of(b"what the client says");
    // Single POST.
    let r = reg
        .client
        .post(reg.url(&format!("/v2/app/blobs/uploads/?digest={claimed}")))
        .body("other bytes")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // POST then PUT.
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = reg.location(&r);
    let r = reg
        .client
        .put(format!("{loc}?digest={claimed}"))
        .body("other bytes")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(
        reg.client.get(&loc).send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the session ended"
    );
    for d in [claimed, Digest::of(b"other bytes")] {
        assert_eq!(
            reg.head(&format!("/v2/app/blobs/{d}")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let r = reg
        .client
        .put(format!("{loc}?digest=sha256:zz"))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    reg.stop().await;
});

both_backends!(
    single_post_empty_and_sha512_blobs,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let d = Digest::of(b"single post");
        let r = reg
            .client
            .post(reg.url(&format!("/v2/app/blobs/uploads/?digest={d}")))
            .body("single post")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "location"), format!("/v2/app/blobs/{d}"));
        assert_eq!(
            reg.get(&format!("/v2/app/blobs/{d}"))
                .await
                .bytes()
                .await
                .unwrap(),
            &b"single post"[..]
        );

        let empty = reg.push_blob("app", b"").await;
        let r = reg.head(&format!("/v2/app/blobs/{empty}")).await;
        assert_eq!(
            (r.status(), header(&r, "content-length")),
            (StatusCode::OK, "0".to_owned())
        );
        let r = reg.get(&format!("/v2/app/blobs/{empty}")).await;
        assert_eq!(header(&r, "content-length"), "0");
        assert!(r.bytes().await.unwrap().is_empty());

        // sha512 chosen up front, and sha512 asked for after a sha256 session.
        let d512 = Digest::of_with(Algorithm::Sha512, b"five twelve");
        let r = reg
            .client
            .post(reg.url("/v2/app/blobs/uploads/?digest-algorithm=sha512"))
            .send()
            .await
            .unwrap();
        let loc = reg.location(&r);
        let r = reg.client.patch(&loc).body("five ").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg
            .client
            .put(format!("{}?digest={d512}", reg.location(&r)))
            .body("twelve")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let r = reg
            .client
            .post(reg.url("/v2/app/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        let loc = reg.location(&r);
        let r = reg
            .client
            .patch(&loc)
            .body("five twelve")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg
            .client
            .put(format!("{}?digest={d512}", reg.location(&r)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            reg.get(&format!("/v2/app/blobs/{d512}"))
                .await
                .bytes()
                .await
                .unwrap(),
            &b"five twelve"[..]
        );
        let r = reg
            .client
            .post(reg.url("/v2/app/blobs/uploads/?digest-algorithm=md5"))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        reg.stop().await;
    }
);

both_backends!(
    blobs_written_past_the_page_cache_round_trip,
    |b: Backend| async move {
        // Parts of 64 KiB so that a few hundred KiB take the O_DIRECT path, whole
        // and in chunks (the chunks are assembled by a second direct write).
        let reg = TestRegistry::start_with(b, |c| {
            c.storage.direct_io = true;
            c.storage.part_size_bytes = 64 * 1024;
        })
        .await;
        let data: Vec<u8> = (0..300_001u32).map(|i| (i * 13 + i / 4099) as u8).collect();
        let whole = reg.push_blob("team/model", &data).await;
        let r = reg.get(&format!("/v2/team/model/blobs/{whole}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.bytes().await.unwrap() == data,
            "a direct write came back changed"
        );

        let mut chunked = data.clone();
        chunked.reverse();
        let digest = Digest::of(&chunked);
        let mut loc = reg.start_upload("team/other").await;
        for (i, piece) in chunked.chunks(100_000).enumerate() {
            let start = i * 100_000;
            let r = reg
                .client
                .patch(&loc)
                .header(
                    CONTENT_RANGE,
                    format!("{start}-{}", start + piece.len() - 1),
                )
                .header(CONTENT_LENGTH, piece.len())
                .body(piece.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            loc = reg.location(&r);
        }
        let r = reg.finish_upload(&loc, &digest, Vec::new()).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let r = reg
            .client
            .get(reg.url(&format!("/v2/team/other/blobs/{digest}")))
            .header(RANGE, "bytes=65530-200000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert!(r.bytes().await.unwrap() == chunked[65530..=200000]);
        reg.stop().await;
    }
);

both_backends!(chunked_uploads_enforce_order, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let d = Digest::of(&data);
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-0");
    let mut loc = reg.location(&r);

    let chunk =
        |start: usize, end: usize| (format!("{start}-{}", end - 1), data[start..end].to_vec());
    let (range, body) = chunk(0, 1024);
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, range)
        .header(CONTENT_LENGTH, 1024)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-1023");
    loc = reg.location(&r);

    // Out of order: 416, and the session is unchanged.
    let (range, body) = chunk(2048, 3000);
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, range)
        .header(CONTENT_LENGTH, 952)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-1023");
    for bad in ["bytes=1024-2047", "1024-2047/3000"] {
        let r = reg
            .client
            .patch(&loc)
            .header(CONTENT_RANGE, bad)
            .header(CONTENT_LENGTH, 1024)
            .body(data[1024..2048].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
    }
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, "1024-2047")
        .header(CONTENT_LENGTH, 10)
        .body(data[1024..1034].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    // Without Content-Length (a chunked body) the range is checked all the same:
    // where it starts, and that the body is as long as it says.
    let streamed = |bytes: &[u8]| {
        reqwest::Body::wrap_stream(futures::stream::iter(vec![Ok::<_, std::io::Error>(
            bytes.to_vec(),
        )]))
    };
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, "2048-2999")
        .body(streamed(&data[2048..3000]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-1023");
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, "1024-2047")
        .body(streamed(&data[1024..1034]))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, format!("0-{}", u64::MAX))
        .body(streamed(&data[1024..1034]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = reg.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-1023");
    assert!(header(&r, "location").contains("/blobs/uploads/"));

    let (range, body) = chunk(1024, 2048);
    let r = reg
        .client
        .patch(&loc)
        .header(CONTENT_RANGE, range)
        .header(CONTENT_LENGTH, 1024)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "range"), "0-2047");
    // The last chunk travels with the PUT.
    let (range, body) = chunk(2048, 3000);
    let r = reg
        .client
        .put(format!("{}?digest={d}", reg.location(&r)))
        .header(CONTENT_RANGE, range)
        .header(CONTENT_LENGTH, 952)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/app/blobs/{d}"));
    assert_eq!(
        reg.get(&format!("/v2/app/blobs/{d}"))
            .await
            .bytes()
            .await
            .unwrap(),
        data
    );
    reg.stop().await;
});

both_backends!(streamed_patch_and_cancel, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = reg.location(&r);
    // No Content-Range: a stream, as docker and buildkit send.
    let stream = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(vec![1u8; 5000]),
        Ok(vec![2u8; 5000]),
    ]);
    let r = reg
        .client
        .patch(&loc)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-9999");
    let r = reg.client.delete(&loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        reg.client.get(&loc).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        reg.client.delete(&loc).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // A session belongs to its repository.
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let other = reg.location(&r).replace("/v2/app/", "/v2/other/");
    expect_error(
        reg.client.get(&other).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        reg.client
            .get(reg.url("/v2/app/blobs/uploads/not-a-uuid"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    reg.stop().await;
});

both_backends!(
    a_disconnected_upload_can_be_resumed,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 13) as u8).collect();
        let r = reg
            .client
            .post(reg.url("/v2/app/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        let loc = reg.location(&r);
        let r = reg
            .client
            .patch(&loc)
            .body(data[..8000].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "range"), "0-7999");
        // The client dies half-way through the next chunk.
        let broken = futures::stream::iter(vec![
            Ok(data[8000..12_000].to_vec()),
            Err(std::io::Error::other("client went away")),
        ]);
        let _ = reg
            .client
            .patch(&loc)
            .body(reqwest::Body::wrap_stream(broken))
            .send()
            .await;
        let r = reg.client.get(&loc).send().await.unwrap();
        assert_eq!(
            header(&r, "range"),
            "0-7999",
            "the broken chunk left no trace"
        );
        let r = reg
            .client
            .put(format!("{loc}?digest={}", Digest::of(&data)))
            .header(CONTENT_RANGE, "8000-19999")
            .header(CONTENT_LENGTH, 12_000)
            .body(data[8000..].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            reg.get(&format!("/v2/app/blobs/{}", Digest::of(&data)))
                .await
                .bytes()
                .await
                .unwrap(),
            data
        );
        reg.stop().await;
    }
);

both_backends!(uploads_survive_a_restart, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 + 5) as u8).collect();
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let path = header(&r, "location");
    let r = reg
        .client
        .patch(reg.url(&path))
        .header(CONTENT_RANGE, "0-59999")
        .header(CONTENT_LENGTH, 60_000)
        .body(data[..60_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let reg = reg.restart().await;
    let r = reg.client.get(reg.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-59999");
    let d = Digest::of(&data);
    let r = reg
        .client
        .put(reg.url(&format!("{path}?digest={d}")))
        .header(CONTENT_RANGE, "60000-99999")
        .header(CONTENT_LENGTH, 40_000)
        .body(data[60_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(
        reg.get(&format!("/v2/app/blobs/{d}"))
            .await
            .bytes()
            .await
            .unwrap(),
        data
    );
    reg.stop().await;
});

both_backends!(
    expired_sessions_and_orphans_are_swept,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| c.limits.upload_session_ttl_secs = 0).await;
        let r = reg
            .client
            .post(reg.url("/v2/app/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        let loc = reg.location(&r);
        reg.client
            .patch(&loc)
            .body(vec![7u8; 1000])
            .send()
            .await
            .unwrap();
        let uploads = reg.config.storage_path().join("uploads");
        assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 1);
        let orphan = uploads.join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir_all(&orphan).unwrap();
        std::fs::write(orphan.join("left-by-a-crash"), b"x").unwrap();

        let state = &reg.running.as_ref().unwrap().state;
        let report = ward_server::workers::sweep_uploads_at(state, i64::MAX)
            .await
            .unwrap();
        assert_eq!((report.expired, report.orphans), (1, 1));
        assert_eq!(
            std::fs::read_dir(&uploads).unwrap().count(),
            0,
            "no session data left"
        );
        expect_error(
            reg.client.get(&loc).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .await;
        reg.stop().await;
    }
);

both_backends!(manifests_round_trip_byte_exact, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let manifest = reg.push_image("app", "v1", b"layer bytes").await;
    let d = Digest::of(&manifest);
    for reference in ["v1".to_owned(), d.to_string()] {
        let r = reg
            .client
            .get(reg.url(&format!("/v2/app/manifests/{reference}")))
            .header(ACCEPT, media::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), media::OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), d.to_string());
        assert_eq!(r.bytes().await.unwrap(), manifest, "byte-exact");
        let r = reg.head(&format!("/v2/app/manifests/{reference}")).await;
        assert_eq!(header(&r, "content-length"), manifest.len().to_string());
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // Accept negotiation: a client that only takes Docker manifests is told no.
    let r = reg
        .client
        .get(reg.url("/v2/app/manifests/v1"))
        .header(ACCEPT, media::DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    // Conditional GET.
    let r = reg
        .client
        .get(reg.url("/v2/app/manifests/v1"))
        .header("if-none-match", format!("\"{d}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    expect_error(
        reg.get("/v2/app/manifests/v2").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    reg.stop().await;
});

both_backends!(manifest_pushes_are_validated, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let config = reg.push_blob("app", b"{}").await;
    let (l1, l2) = (Digest::of(b"missing 1"), Digest::of(b"missing 2"));
    let m = image_manifest(config, 2, &[(l1, 9), (l2, 9)], "");
    let r = reg.put_manifest("app", "v1", media::OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "one error per unknown blob");
    assert_eq!(errors[0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(errors[1]["detail"]["digest"], l2.to_string());
    expect_error(
        reg.get("/v2/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;

    for (body, ct) in [
        (b"{not json".to_vec(), media::OCI_MANIFEST),
        (
            image_manifest(config, 2, &[], "")
                .replace_bytes("\"schemaVersion\":2", "\"schemaVersion\":3"),
            media::OCI_MANIFEST,
        ),
        (image_manifest(config, 2, &[], ""), media::OCI_INDEX),
        (
            image_manifest(config, 2, &[], ""),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
    ] {
        let r = reg.put_manifest("app", "v1", ct, &body).await;
        expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    // The server refuses on the declared length without reading the body, so
    // the client may still be writing when the connection closes and see a
    // broken pipe instead of the answer; a server without the limit would
    // answer something else every time.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let mut answered = None;
    for _ in 0..10 {
        let sent = reg
            .client
            .put(reg.url("/v2/app/manifests/v1"))
            .header("content-type", media::OCI_MANIFEST)
            .body(huge.clone())
            .send()
            .await;
        if let Ok(r) = sent {
            answered = Some(r);
            break;
        }
    }
    let r = answered.expect("the oversized manifest was never answered");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let ok = image_manifest(config, 2, &[], "");
    let r = reg
        .put_manifest("app", "bad:tag", media::OCI_MANIFEST, &ok)
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let r = reg
        .put_manifest("app", ".bad", media::OCI_MANIFEST, &ok)
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "TAG_INVALID").await;
    let r = reg
        .put_manifest(
            "app",
            &Digest::of(b"other").to_string(),
            media::OCI_MANIFEST,
            &ok,
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // By digest, with extra tags.
    let d = Digest::of(&ok);
    let r = reg
        .client
        .put(reg.url(&format!("/v2/app/manifests/{d}?tag=a&tag=b")))
        .header(CONTENT_TYPE, media::OCI_MANIFEST)
        .body(ok.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/app/manifests/{d}"));
    let tags: Vec<String> = r
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tags, vec!["a", "b"]);
    assert_eq!(
        header(
            &reg.head("/v2/app/manifests/b").await,
            "docker-content-digest"
        ),
        d.to_string()
    );
    // Non-distributable layers need not be pushed.
    let nd = String::from_utf8(image_manifest(config, 2, &[(l1, 9)], ""))
        .unwrap()
        .replace(
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
        );
    assert_eq!(
        reg.put_manifest("app", "nd", media::OCI_MANIFEST, nd.as_bytes())
            .await
            .status(),
        StatusCode::CREATED
    );
    reg.stop().await;
});

trait ReplaceBytes {
    fn replace_bytes(self, from: &str, to: &str) -> Vec<u8>;
}
impl ReplaceBytes for Vec<u8> {
    fn replace_bytes(self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }
}

both_backends!(indexes_and_docker_manifests, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let child = reg.push_image("app", "child", b"l").await;
    let child_d = Digest::of(&child);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{child_d}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        media::OCI_INDEX,
        media::OCI_MANIFEST,
        child.len()
    );
    assert_eq!(
        reg.put_manifest("app", "multi", media::OCI_INDEX, index.as_bytes())
            .await
            .status(),
        StatusCode::CREATED
    );
    let missing = index.replace(&child_d.to_string(), &Digest::of(b"nope").to_string());
    expect_error(
        reg.put_manifest("app", "broken", media::OCI_INDEX, missing.as_bytes())
            .await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;

    let config = reg.push_blob("app", b"{\"os\":\"linux\"}").await;
    let layer = reg.push_blob("app", b"docker layer").await;
    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":14}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer}","size":12}}]}}"#,
        media::DOCKER_MANIFEST
    );
    assert_eq!(
        reg.put_manifest("app", "docker", media::DOCKER_MANIFEST, docker.as_bytes())
            .await
            .status(),
        StatusCode::CREATED
    );
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
        media::DOCKER_MANIFEST_LIST,
        media::DOCKER_MANIFEST,
        Digest::of(docker.as_bytes()),
        docker.len()
    );
    assert_eq!(
        reg.put_manifest("app", "list", media::DOCKER_MANIFEST_LIST, list.as_bytes())
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = reg
        .client
        .get(reg.url("/v2/app/manifests/list"))
        .header(
            ACCEPT,
            format!(
                "{}, {}",
                media::DOCKER_MANIFEST_LIST,
                media::DOCKER_MANIFEST
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type"), media::DOCKER_MANIFEST_LIST);
    assert_eq!(r.bytes().await.unwrap(), list.as_bytes());
    reg.stop().await;
});

both_backends!(
    referrers_list_what_refers_to_a_subject,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let subject = Digest::of(b"pushed later, or never");
        let r = reg.get(&format!("/v2/app/referrers/{subject}")).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "an unknown subject has an empty index, never 404"
        );
        assert_eq!(header(&r, "content-type"), media::OCI_INDEX);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["schemaVersion"], 2);
        assert_eq!(body["mediaType"], media::OCI_INDEX);
        assert_eq!(body["manifests"].as_array().unwrap().len(), 0);

        let empty = reg.push_blob("app", media::OCI_EMPTY_BYTES).await;
        let mut pushed = Vec::new();
        for (artifact_type, note) in [
            (Some("application/vnd.example.sig"), "one"),
            (Some("application/vnd.example.sbom"), "two"),
            (None, "three"),
        ] {
            let at = artifact_type
                .map(|t| format!(r#","artifactType":"{t}""#))
                .unwrap_or_default();
            let extra = format!(
                r#"{at},"subject":{{"mediaType":"{}","digest":"{subject}","size":22}},"annotations":{{"note":"{note}"}}"#,
                media::OCI_MANIFEST
            );
            let m = image_manifest(empty, 2, &[], &extra)
                .replace_bytes(media::OCI_CONFIG, media::OCI_EMPTY);
            let r = reg
                .put_manifest("app", &Digest::of(&m).to_string(), media::OCI_MANIFEST, &m)
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            assert_eq!(header(&r, "oci-subject"), subject.to_string());
            pushed.push(Digest::of(&m));
        }
        let body: Value = reg
            .get(&format!("/v2/app/referrers/{subject}"))
            .await
            .json()
            .await
            .unwrap();
        let found = body["manifests"].as_array().unwrap();
        assert_eq!(found.len(), 3);
        let types: Vec<&str> = found
            .iter()
            .map(|d| d["artifactType"].as_str().unwrap())
            .collect();
        assert!(
            types.contains(&media::OCI_EMPTY),
            "falls back to the config media type"
        );
        assert!(
            found.iter().all(|d| d["annotations"]["note"].is_string()),
            "annotations are copied"
        );

        let r = reg
            .get(&format!(
                "/v2/app/referrers/{subject}?artifactType=application/vnd.example.sig"
            ))
            .await;
        assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(body["manifests"][0]["digest"], pushed[0].to_string());
        expect_error(
            reg.get("/v2/app/referrers/sha256:bad").await,
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        )
        .await;
        reg.stop().await;
    }
);

both_backends!(referrers_page_with_link, |b: Backend| async move {
    let reg = TestRegistry::start_with(b, |c| c.limits.page_entries_max = 2).await;
    let subject = Digest::of(b"s");
    let empty = reg.push_blob("app", b"{}").await;
    for i in 0..5 {
        let extra = format!(
            r#","subject":{{"mediaType":"{}","digest":"{subject}","size":1}},"annotations":{{"i":"{i}"}}"#,
            media::OCI_MANIFEST
        );
        let m = image_manifest(empty, 2, &[], &extra);
        assert_eq!(
            reg.put_manifest("app", &format!("r{i}"), media::OCI_MANIFEST, &m)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let mut next = Some(format!("/v2/app/referrers/{subject}"));
    let mut seen = 0;
    while let Some(path) = next {
        let r = reg.get(&path).await;
        let link = header(&r, "link");
        let body: Value = r.json().await.unwrap();
        seen += body["manifests"].as_array().unwrap().len();
        next = (!link.is_empty()).then(|| {
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
    }
    assert_eq!(seen, 5);
    reg.stop().await;
});

both_backends!(tags_and_catalog_paginate, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let m = reg.push_image("app", "v1", b"x").await;
    for t in ["v2", "a", "B", "latest"] {
        assert_eq!(
            reg.put_manifest("app", t, media::OCI_MANIFEST, &m)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let body: Value = reg.get("/v2/app/tags/list").await.json().await.unwrap();
    assert_eq!(body["name"], "app");
    assert_eq!(
        body["tags"],
        serde_json::json!(["B", "a", "latest", "v1", "v2"])
    );

    let r = reg.get("/v2/app/tags/list?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/app/tags/list?last=a&n=2>; rel=\"next\""
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["B", "a"]));
    let r = reg.get("/v2/app/tags/list?n=2&last=a").await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!(["latest", "v1"])
    );
    let r = reg.get("/v2/app/tags/list?last=latest").await;
    assert!(header(&r, "link").is_empty());
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!(["v1", "v2"])
    );
    let r = reg.get("/v2/app/tags/list?n=0").await;
    assert!(header(&r, "link").is_empty());
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!([])
    );
    expect_error(
        reg.get("/v2/app/tags/list?n=-1").await,
        StatusCode::BAD_REQUEST,
        "PAGINATION_NUMBER_INVALID",
    )
    .await;

    reg.push_blob("ns/one", b"1").await;
    reg.push_blob("ns/two", b"2").await;
    let r = reg.get("/v2/_catalog?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?last=ns%2Fone&n=2>; rel=\"next\""
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["repositories"],
        serde_json::json!(["app", "ns/one"])
    );
    let r = reg.get("/v2/_catalog?last=ns%2Fone").await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["repositories"],
        serde_json::json!(["ns/two"])
    );
    reg.stop().await;
});

both_backends!(deletion_is_off_by_default, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let m = reg.push_image("app", "v1", b"x").await;
    let d = Digest::of(&m);
    for path in [
        "/v2/app/manifests/v1".to_owned(),
        format!("/v2/app/manifests/{d}"),
        format!("/v2/app/blobs/{}", Digest::of(b"x")),
    ] {
        expect_error(
            reg.delete(&path).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        )
        .await;
    }
    assert_eq!(
        reg.head("/v2/app/manifests/v1").await.status(),
        StatusCode::OK
    );
    reg.stop().await;
});

both_backends!(deletion_when_enabled, |b: Backend| async move {
    let reg = TestRegistry::start_with(b, |c| c.delete_enabled = true).await;
    let m = reg.push_image("app", "v1", b"layer").await;
    let d = Digest::of(&m);
    assert_eq!(
        reg.put_manifest("app", "v2", media::OCI_MANIFEST, &m)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        reg.delete("/v2/app/manifests/v1").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        reg.head("/v2/app/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reg.head(&format!("/v2/app/manifests/{d}")).await.status(),
        StatusCode::OK,
        "a tag delete keeps the manifest"
    );
    assert_eq!(
        reg.delete(&format!("/v2/app/manifests/{d}")).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        reg.head("/v2/app/manifests/v2").await.status(),
        StatusCode::NOT_FOUND,
        "tags go with their manifest"
    );
    expect_error(
        reg.delete(&format!("/v2/app/manifests/{d}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;

    let layer = Digest::of(b"layer");
    let r = reg
        .client
        .post(reg.url(&format!("/v2/other/blobs/uploads/?mount={layer}&from=app")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        reg.delete(&format!("/v2/app/blobs/{layer}")).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        reg.head(&format!("/v2/app/blobs/{layer}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reg.head(&format!("/v2/other/blobs/{layer}")).await.status(),
        StatusCode::OK,
        "other repositories keep theirs"
    );
    expect_error(
        reg.delete(&format!("/v2/app/blobs/{layer}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    reg.stop().await;
});

both_backends!(metrics_count_requests, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    reg.push_image("app", "v1", b"x").await;
    for _ in 0..3 {
        reg.get("/v2/app/manifests/v1").await;
    }
    let text = reg.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"ward_http_requests_total{endpoint="manifest_get",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains("ward_http_request_duration_seconds_bucket"));
    assert!(text.contains("ward_blob_received_bytes_total"));
    assert!(text.contains("ward_upload_sessions_open 0"));
    reg.stop().await;
});

/// Pushes a one-layer image to `repo:tag`, runs every queued scan to its end
/// in this task (the harness runs no scan workers), and returns the
/// manifest's referrers.
async fn scanned_referrers(reg: &TestRegistry, repo: &str, tag: &str, layer: &[u8]) -> Vec<Value> {
    let config = reg.push_blob(repo, b"{}").await;
    let layer_digest = reg.push_blob(repo, layer).await;
    let m = image_manifest(config, 2, &[(layer_digest, layer.len())], "");
    let r = reg.put_manifest(repo, tag, media::OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let state = &reg.running.as_ref().unwrap().state;
    let jobs = state
        .meta
        .claim_scan_jobs(ward_store::now_ms(), 60_000, 100)
        .await
        .unwrap();
    assert!(jobs.iter().any(|j| j.digest == layer_digest), "{jobs:?}");
    for job in &jobs {
        ward_server::scanning::process(state, job).await.unwrap();
    }
    assert!(
        state
            .meta
            .scan_result(&layer_digest)
            .await
            .unwrap()
            .is_some()
    );
    let body: Value = reg
        .get(&format!("/v2/{repo}/referrers/{}", Digest::of(&m)))
        .await
        .json()
        .await
        .unwrap();
    body["manifests"].as_array().unwrap().clone()
}

both_backends!(
    scan_reports_are_referrers_unless_switched_off,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let found = scanned_referrers(&reg, "app", "v1", b"layer one").await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0]["artifactType"],
            ward_server::scanning::SCAN_REPORT_ARTIFACT_TYPE
        );

        let mut reg = reg;
        reg.config.scan.attach_reports = false;
        let reg = reg.restart().await;
        let found = scanned_referrers(&reg, "app", "v2", b"layer two").await;
        assert!(
            found.is_empty(),
            "scanned, but no report attached: {found:?}"
        );
        reg.stop().await;
    }
);

both_backends!(large_uploads_verify_every_byte, |b: Backend| async move {
    // Larger than one 8 MiB write part, in one request and in chunks whose
    // second one resumes from the hash state the first one saved.
    let reg = TestRegistry::start(b).await;
    let data: Vec<u8> = (0..9_000_000u32)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    let d = Digest::of(&data);
    let wrong = Digest::of(b"not these bytes");
    for (digest, status) in [(wrong, StatusCode::BAD_REQUEST), (d, StatusCode::CREATED)] {
        let started = reg
            .client
            .post(reg.url("/v2/big/blobs/uploads/"))
            .send()
            .await;
        let loc = reg.location(&started.unwrap());
        let put = reg
            .client
            .put(format!("{loc}?digest={digest}"))
            .body(data.clone());
        let r = put.send().await.unwrap();
        if digest == wrong {
            expect_error(r, status, "DIGEST_INVALID").await;
        } else {
            assert_eq!(r.status(), status);
        }
    }
    let got = reg
        .get(&format!("/v2/big/blobs/{d}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got[..] == data[..], "the blob reads back byte for byte");

    // Chunked, in another repository: 3 MB, then 6 MB.
    let mut loc = reg.location(
        &reg.client
            .post(reg.url("/v2/big2/blobs/uploads/"))
            .send()
            .await
            .unwrap(),
    );
    for (from, to) in [(0, 3_000_000), (3_000_000, data.len())] {
        let r = reg
            .client
            .patch(&loc)
            .header(CONTENT_RANGE, format!("{from}-{}", to - 1))
            .header(CONTENT_LENGTH, to - from)
            .body(data[from..to].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        loc = reg.location(&r);
    }
    let r = reg
        .client
        .put(format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    reg.stop().await;
});

both_backends!(
    every_way_a_blob_arrives_is_audited,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        // POST then PUT with the whole blob, as skopeo and oras send it.
        let put = reg.push_blob("app", b"pushed by POST then PUT").await;
        // One POST carrying the blob.
        let monolithic = Digest::of(b"pushed by one POST");
        let r = reg
            .client
            .post(reg.url(&format!("/v2/app/blobs/uploads/?digest={monolithic}")))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(&b"pushed by one POST"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        // POST, PATCH, then PUT with the last chunk, as docker sends it.
        let chunked = Digest::of(b"pushed in chunks");
        let r = reg
            .client
            .patch(reg.start_upload("app").await)
            .body(&b"pushed in"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg
            .client
            .put(format!("{}?digest={chunked}", reg.location(&r)))
            .body(&b" chunks"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        // A mount into another repository.
        let r = reg
            .client
            .post(reg.url(&format!("/v2/other/blobs/uploads/?mount={put}&from=app")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);

        let audited = |repository: &'static str, action: &'static str| {
            let reg = &reg;
            async move {
                let page: Value = reg
                    .get(&format!(
                        "/api/v1/audit?repository={repository}&action={action}"
                    ))
                    .await
                    .json()
                    .await
                    .unwrap();
                let mut digests: Vec<String> = page["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event"]["digest"].as_str().unwrap().to_owned())
                    .collect();
                digests.sort();
                digests
            }
        };
        let mut pushed = vec![put.to_string(), monolithic.to_string(), chunked.to_string()];
        pushed.sort();
        assert_eq!(audited("app", "push_blob").await, pushed);
        assert_eq!(audited("other", "mount_blob").await, vec![put.to_string()]);
        reg.stop().await;
    }
);

/// Starts a streamed `PATCH` into a new session of `app` and waits until the
/// server is receiving it; returns the session, its location, the sender of
/// the body's pieces and the pending response.
async fn streaming_patch(
    reg: &TestRegistry,
) -> (
    uuid::Uuid,
    String,
    futures::channel::mpsc::UnboundedSender<Result<Vec<u8>, std::io::Error>>,
    tokio::task::JoinHandle<reqwest::Response>,
) {
    let loc = reg.start_upload("app").await;
    let id: uuid::Uuid = loc.rsplit('/').next().unwrap().parse().unwrap();
    let (pieces, patch) = open_patch(reg, id, &loc).await;
    (id, loc, pieces, patch)
}

/// Starts a PATCH into session `id` at `loc` whose body stays open, sends
/// its first 1000 bytes and waits until the server is receiving them.
async fn open_patch(
    reg: &TestRegistry,
    id: uuid::Uuid,
    loc: &str,
) -> (
    futures::channel::mpsc::UnboundedSender<Result<Vec<u8>, std::io::Error>>,
    tokio::task::JoinHandle<reqwest::Response>,
) {
    let (pieces, body) = futures::channel::mpsc::unbounded();
    let patch = tokio::spawn(
        reg.client
            .patch(loc)
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    let patch = tokio::spawn(async move { patch.await.unwrap().unwrap() });
    pieces.unbounded_send(Ok(vec![1u8; 1000])).unwrap();
    let state = reg.running.as_ref().unwrap().state.clone();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !state.streaming_uploads.contains(id) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the server to start receiving the PATCH");
    (pieces, patch)
}

both_backends!(
    a_session_being_streamed_into_outlives_its_ttl,
    |b: Backend| async move {
        // A TTL every session has outlived: only a request in flight keeps one.
        let reg = TestRegistry::start_with(b, |c| c.limits.upload_session_ttl_secs = 0).await;
        let state = reg.running.as_ref().unwrap().state.clone();
        let (id, loc, pieces, patch) = streaming_patch(&reg).await;
        let report = ward_server::workers::sweep_uploads_at(&state, i64::MAX)
            .await
            .unwrap();
        assert_eq!(report.expired, 0, "a session receiving bytes is not idle");
        // Other servers on the same database see the session in use: as if it
        // had been idle since 1970, the bytes that arrive mark it touched.
        assert!(state.meta.touch_upload(id, 0).await.unwrap());
        pieces.unbounded_send(Ok(vec![2u8; 1000])).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while state.meta.upload(id).await.unwrap().unwrap().updated_at_ms == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the session to be marked in use while bytes arrive");
        drop(pieces);
        let r = patch.await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-1999");
        let r = reg.client.get(&loc).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        // Once the request is over the session is idle again.
        let report = ward_server::workers::sweep_uploads_at(&state, i64::MAX)
            .await
            .unwrap();
        assert_eq!(report.expired, 1);

        // A session cancelled while a PATCH streams into it stops that PATCH.
        let (_, loc, pieces, patch) = streaming_patch(&reg).await;
        let r = reg.client.delete(&loc).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        pieces.unbounded_send(Ok(vec![2u8; 1000])).unwrap();
        drop(pieces);
        expect_error(
            patch.await.unwrap(),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .await;
        reg.stop().await;
    }
);

both_backends!(
    a_session_idle_for_most_of_its_ttl_is_marked_in_use_when_bytes_arrive,
    |b: Backend| async move {
        // The default TTL; the session looks idle since 1970 to every server.
        let reg = TestRegistry::start(b).await;
        let state = reg.running.as_ref().unwrap().state.clone();
        let loc = reg.start_upload("app").await;
        let id: uuid::Uuid = loc.rsplit('/').next().unwrap().parse().unwrap();
        assert!(state.meta.touch_upload(id, 1).await.unwrap());
        let (pieces, patch) = open_patch(&reg, id, &loc).await;
        // Not a quarter TTL after the request started: at its first bytes.
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while state.meta.upload(id).await.unwrap().unwrap().updated_at_ms == 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the session to be marked in use while the PATCH is open");
        assert!(
            !patch.is_finished(),
            "marked by the heartbeat, not the commit"
        );
        drop(pieces);
        assert_eq!(patch.await.unwrap().status(), StatusCode::ACCEPTED);
        reg.stop().await;
    }
);

both_backends!(
    a_request_past_request_timeout_is_cut_but_an_upload_is_not,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| c.limits.request_timeout_secs = 1).await;
        // An upload that will stay open past the limit.
        let (_, _, pieces, patch) = streaming_patch(&reg).await;
        // A manifest whose body stops arriving.
        let (stalled, body) = futures::channel::mpsc::unbounded();
        stalled
            .unbounded_send(Ok::<_, std::io::Error>(b"{".to_vec()))
            .unwrap();
        let put = reg
            .client
            .put(reg.url("/v2/app/manifests/v1"))
            .header(CONTENT_TYPE, media::OCI_MANIFEST)
            .body(reqwest::Body::wrap_stream(body))
            .send();
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), put)
            .await
            .expect("the server to cut the stalled request")
            .unwrap();
        expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
        drop(stalled);
        pieces.unbounded_send(Ok(vec![2u8; 1000])).unwrap();
        drop(pieces);
        let r = patch.await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "the upload outlived the limit"
        );
        assert_eq!(header(&r, "range"), "0-1999");
        reg.stop().await;
    }
);

both_backends!(
    a_put_stopped_after_moving_the_blob_can_be_retried,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let data = b"one chunk, moved into place by a PUT that never linked it";
        let d = Digest::of(data);
        let r = reg
            .client
            .patch(reg.start_upload("app").await)
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = reg.location(&r);
        // What the PUT had done when the server died: the verified chunk is at
        // the blob's address, the session still lists it, nothing is linked.
        let storage = reg.config.storage_path();
        let id = loc.rsplit('/').next().unwrap();
        let chunk = std::fs::read_dir(storage.join("uploads").join(id))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let hex = d.hex();
        let target = storage.join("blobs/sha256").join(&hex[..2]).join(&hex);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::rename(&chunk, &target).unwrap();
        expect_error(
            reg.get(&format!("/v2/app/blobs/{d}")).await,
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
        )
        .await;

        let r = reg
            .client
            .put(format!("{loc}?digest={d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "the retried PUT finishes");
        let got = reg.get(&format!("/v2/app/blobs/{d}")).await;
        assert_eq!(got.bytes().await.unwrap().as_ref(), data);
        reg.stop().await;
    }
);

both_backends!(
    a_patch_that_loses_a_race_says_where_to_resume,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        // The slow PATCH starts first, at byte 0...
        let (_, loc, pieces, slow) = streaming_patch(&reg).await;
        // ...and a quick one extends the session meanwhile.
        let r = reg
            .client
            .patch(&loc)
            .body(vec![3u8; 500])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-499");
        drop(pieces);
        let r = slow.await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&r, "range"), "0-499", "resume where the session is");
        let r = reg.client.get(&loc).send().await.unwrap();
        assert_eq!(header(&r, "range"), "0-499");
        reg.stop().await;
    }
);

both_backends!(
    racing_upload_starts_stay_within_the_session_limit,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| {
            c.limits.upload_sessions_per_repository_max = 2;
        })
        .await;
        let start = |repo: &'static str| {
            reg.client
                .post(reg.url(&format!("/v2/{repo}/blobs/uploads/")))
                .send()
        };
        let answers = futures::future::join_all((0..12).map(|_| start("busy"))).await;
        let mut opened = 0;
        for r in answers {
            let r = r.unwrap();
            if r.status() == StatusCode::ACCEPTED {
                opened += 1;
                continue;
            }
            assert_eq!(header(&r, "retry-after"), "60");
            expect_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
        }
        assert_eq!(opened, 2);
        assert_eq!(start("calm").await.unwrap().status(), StatusCode::ACCEPTED);
        reg.stop().await;
    }
);
