//! Attachments over real HTTP: files from the export folder and from URLs reach the sandbox
//! through `Client::post_multipart` intact (names, sizes, SHA-256), 25 MB per request is
//! respected at and over the limit, and every way an attachment can go wrong (missing,
//! leaving the export folder, a failing URL) is a clear per-attachment error that never
//! shows the source's auth header.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use hfmigrate::attachments::{
    AttachmentRef, AttachmentSource, MAX_REQUEST_BYTES, inline_images, plan_groups, rewrite_src,
};
use hfmigrate::client::{Client, ClientOptions, FilePart, INLINE_FILE_FIELD, WriteOutcome};
use hfmigrate::import::fetch::{AttachmentError, FetchOptions, Fetcher, Resolved, SourceAuth};
use hfmigrate::sandbox::RunningSandbox;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{self, fast, start_sandbox, unlimited};

const SECRET: &str = "Basic c291cmNlLXNlY3JldC10b2tlbi00Mg==";
const SECRET_TOKEN: &str = "c291cmNlLXNlY3JldC10b2tlbi00Mg==";

/// A sandbox with its rate limits off (these tests are about what arrives, not pacing).
async fn sandbox_and_client() -> (RunningSandbox, Client) {
    let sb = start_sandbox(unlimited).await;
    let client = client_for(&sb, ClientOptions::default());
    (sb, client)
}

fn client_for(sb: &RunningSandbox, options: ClientOptions) -> Client {
    support::client_for(sb, fast(options))
}

fn local(name: &str, path: &str) -> AttachmentRef {
    AttachmentRef {
        name: name.into(),
        source: AttachmentSource::Path(path.into()),
        size: None,
        content_type: None,
    }
}

fn remote(name: &str, url: String) -> AttachmentRef {
    AttachmentRef {
        name: name.into(),
        source: AttachmentSource::Url(url),
        size: None,
        content_type: None,
    }
}

fn fetcher(root: &Path) -> Fetcher {
    let options = FetchOptions {
        allow_loopback_http: true,
        ..FetchOptions::default()
    };
    Fetcher::new(root, options).unwrap()
}

fn sha256_of(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut digest = Sha256::new();
    std::io::copy(&mut file, &mut digest).unwrap();
    hex::encode(digest.finalize())
}

/// A file of `size` bytes without writing them: sparse, so 25 MB costs nothing.
fn sparse(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

fn parts(resolved: &[Resolved]) -> Vec<FilePart> {
    resolved.iter().map(Resolved::file_part).collect()
}

fn done(outcome: WriteOutcome) -> Value {
    match outcome {
        WriteOutcome::Done(v) => v,
        other => panic!("write not done: {other:?}"),
    }
}

/// Creates a ticket by plain JSON and returns (id, contact id).
async fn plain_ticket(client: &Client) -> (u64, u64) {
    let t = done(
        client
            .post_json(
                "tickets/",
                &json!({"subject": "Printer", "text": "It jams.", "category": 1,
                    "email": "ann@example.com", "name": "Ann"}),
            )
            .await
            .unwrap(),
    );
    (t["id"].as_u64().unwrap(), t["user"]["id"].as_u64().unwrap())
}

/// (filename, size, sha256) of each attachment of each update, from `GET ticket/<n>/`
/// and the sandbox's own record of the bytes.
async fn sent_files(
    sb: &RunningSandbox,
    client: &Client,
    ticket: u64,
) -> Vec<Vec<(String, u64, String)>> {
    let detail = client
        .get_json(&format!("ticket/{ticket}/"), &[])
        .await
        .unwrap();
    let mut out = vec![];
    for u in detail["updates"].as_array().unwrap() {
        let mut files = vec![];
        for a in u["message"]["attachments"].as_array().into_iter().flatten() {
            let id = a["id"].as_u64().unwrap();
            // A usable link: the name is encoded, so the path still ends in it.
            let url = a["url"].as_str().unwrap_or_default();
            let parsed = reqwest::Url::parse(url).unwrap();
            let last = parsed.path_segments().and_then(|mut s| s.next_back());
            assert!(parsed.path().contains(&format!("/{id}/")), "{url}");
            assert!(!url.contains(' '), "{url}");
            assert!(last.is_some_and(|l| !l.is_empty()), "{url}");
            let stored = sb.attachment(id).unwrap();
            assert_eq!(a["filename"], stored.filename.as_str());
            files.push((stored.filename, stored.size, stored.sha256));
        }
        out.push(files);
    }
    out
}

#[tokio::test]
async fn a_ticket_created_by_multipart_keeps_both_files_and_its_fields() {
    let (sb, client) = sandbox_and_client().await;
    let export = tempfile::tempdir().unwrap();
    std::fs::create_dir(export.path().join("att")).unwrap();
    let text: Vec<u8> = b"line of a log file\n".repeat(2000);
    std::fs::write(export.path().join("att/log.txt"), &text).unwrap();
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(export.path().join("att/scan 1.pdf"), &binary).unwrap();
    let f = fetcher(export.path());
    let resolved = vec![
        f.fetch(&local("log.txt", "att/log.txt")).await.unwrap(),
        // The name HappyFox shows is the mapping's, not the file's.
        f.fetch(&local("Résumé (scan).pdf", "att/scan 1.pdf"))
            .await
            .unwrap(),
    ];
    assert_eq!(resolved[1].size, 300_000);
    let fields = json!({"subject": "With files", "html": "<p>See attached</p>", "category": 1,
        "email": "bo@example.com", "name": "Bo", "t-cf-3": [21, 22], "assignee": null,
        "tags": "migrated,src-test"});
    let t = done(
        client
            .post_multipart("tickets/", &fields, &parts(&resolved))
            .await
            .unwrap(),
    );
    let id = t["id"].as_u64().unwrap();
    assert_eq!(t["attachments_count"], 2);
    let cf = t["custom_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == 3)
        .unwrap();
    assert_eq!(
        cf["value_id"],
        json!([21, 22]),
        "a list goes as JSON text: {cf}"
    );
    let files = sent_files(&sb, &client, id).await;
    assert_eq!(
        files,
        vec![vec![
            (
                "log.txt".to_string(),
                text.len() as u64,
                hex::encode(Sha256::digest(&text))
            ),
            (
                "Résumé (scan).pdf".to_string(),
                300_000,
                hex::encode(Sha256::digest(&binary))
            ),
        ]]
    );
    assert_eq!(client.stats().posts_sent, 1);
}

#[tokio::test]
async fn replies_notes_and_contact_replies_carry_their_attachments() {
    let (sb, client) = sandbox_and_client().await;
    let export = tempfile::tempdir().unwrap();
    for (name, size) in [("a.png", 1000), ("b.csv", 2000), ("c.zip", 3000)] {
        sparse(&export.path().join(name), size);
    }
    let f = fetcher(export.path());
    let (ticket, contact) = plain_ticket(&client).await;
    let a = f.fetch(&local("a.png", "a.png")).await.unwrap();
    let b = f.fetch(&local("b.csv", "b.csv")).await.unwrap();
    let c = f.fetch(&local("c.zip", "./c.zip")).await.unwrap();
    let reply = json!({"staff": 2, "html": "<p>Fixed</p>", "update_customer": false,
        "send_survey": false});
    done(
        client
            .post_multipart(
                &format!("ticket/{ticket}/staff_update/"),
                &reply,
                &[a.file_part(), b.file_part()],
            )
            .await
            .unwrap(),
    );
    done(
        client
            .post_multipart(
                &format!("ticket/{ticket}/staff_pvtnote/"),
                &json!({"staff": 3, "html": "internal"}),
                &[c.file_part()],
            )
            .await
            .unwrap(),
    );
    done(
        client
            .post_multipart(
                &format!("ticket/{ticket}/user_reply/"),
                &json!({"user": contact, "text": "Thanks"}),
                &[a.file_part()],
            )
            .await
            .unwrap(),
    );
    let names: Vec<Vec<(String, u64)>> = sent_files(&sb, &client, ticket)
        .await
        .into_iter()
        .map(|u| u.into_iter().map(|(n, s, _)| (n, s)).collect())
        .collect();
    assert_eq!(
        names,
        vec![
            vec![],
            vec![("a.png".into(), 1000), ("b.csv".into(), 2000)],
            vec![("c.zip".into(), 3000)],
            vec![("a.png".into(), 1000)],
        ]
    );
}

#[tokio::test]
async fn twenty_five_mb_is_one_post_one_byte_more_is_split_and_a_larger_file_is_not_sent() {
    let (sb, client) = sandbox_and_client().await;
    let export = tempfile::tempdir().unwrap();
    let limit = MAX_REQUEST_BYTES;
    sparse(&export.path().join("exact.bin"), limit);
    sparse(&export.path().join("big.bin"), limit - 1_000_000);
    sparse(&export.path().join("rest.bin"), 1_000_001);
    sparse(&export.path().join("huge.bin"), limit + 1);
    let f = fetcher(export.path());
    let (ticket, _) = plain_ticket(&client).await;
    let note = format!("ticket/{ticket}/staff_pvtnote/");
    let body = json!({"staff": 2, "html": "files"});

    // Exactly 25 MB in one request.
    let exact = f.fetch(&local("exact.bin", "exact.bin")).await.unwrap();
    assert_eq!(
        plan_groups(&[("exact.bin", exact.size)], limit),
        Ok(vec![vec![0]])
    );
    done(
        client
            .post_multipart(&note, &body, &[exact.file_part()])
            .await
            .unwrap(),
    );

    // One byte over together: HappyFox (and the sandbox) refuse it whole...
    let big = f.fetch(&local("big.bin", "big.bin")).await.unwrap();
    let rest = f.fetch(&local("rest.bin", "rest.bin")).await.unwrap();
    let together = [big.file_part(), rest.file_part()];
    match client
        .post_multipart(&note, &body, &together)
        .await
        .unwrap()
    {
        WriteOutcome::Rejected(e) => {
            assert_eq!(e.fields[0].field, "attachments", "{e:?}");
        }
        other => panic!("25 MB + 1 accepted: {other:?}"),
    }
    // ...so the plan splits it into two posts.
    let groups = plan_groups(&[("big.bin", big.size), ("rest.bin", rest.size)], limit).unwrap();
    assert_eq!(groups, vec![vec![0], vec![1]]);
    let both = [&big, &rest];
    for group in &groups {
        let files: Vec<FilePart> = group.iter().map(|&i| both[i].file_part()).collect();
        done(client.post_multipart(&note, &body, &files).await.unwrap());
    }

    // A single file over 25 MB is reported by the fetcher and the plan, never sent.
    let e = f.fetch(&local("huge.bin", "huge.bin")).await.unwrap_err();
    assert!(
        matches!(e, AttachmentError::TooLarge { size, .. } if size == limit + 1),
        "{e}"
    );
    assert!(
        e.to_string().contains("huge.bin") && e.to_string().contains("not sent"),
        "{e}"
    );
    let oversize = plan_groups(&[("small", 10), ("huge.bin", limit + 1)], limit).unwrap_err();
    assert_eq!(oversize.files[0].name, "huge.bin");
    assert_eq!(oversize.groups, vec![vec![0]]);

    let sizes: Vec<Vec<u64>> = sent_files(&sb, &client, ticket)
        .await
        .into_iter()
        .map(|u| u.into_iter().map(|(_, s, _)| s).collect())
        .collect();
    assert_eq!(
        sizes,
        vec![
            vec![],
            vec![limit],
            vec![limit - 1_000_000],
            vec![1_000_001]
        ]
    );
}

#[tokio::test]
async fn missing_files_and_paths_leaving_the_export_are_refused_by_name() {
    let outer = tempfile::tempdir().unwrap();
    let export = outer.path().join("export");
    std::fs::create_dir_all(export.join("files")).unwrap();
    std::fs::write(outer.path().join("secret"), b"not for HappyFox").unwrap();
    std::fs::write(export.join("files/ok.txt"), b"fine").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(outer.path().join("secret"), export.join("files/link")).unwrap();
        symlink(outer.path(), export.join("up")).unwrap();
        symlink(export.join("files/ok.txt"), export.join("inside-link")).unwrap();
        symlink(export.join("gone"), export.join("dangling")).unwrap();
    }
    let f = fetcher(&export);
    let secret_abs = outer.path().join("secret");
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing", "files/nope.txt".into(), "not found"),
        ("parent", "../secret".into(), "outside the export folder"),
        (
            "deep parent",
            "files/../../secret".into(),
            "outside the export folder",
        ),
        (
            "absolute",
            secret_abs.to_string_lossy().into_owned(),
            "absolute",
        ),
        #[cfg(unix)]
        ("symlink", "files/link".into(), "outside the export folder"),
        #[cfg(unix)]
        (
            "symlinked dir",
            "up/secret".into(),
            "outside the export folder",
        ),
        #[cfg(unix)]
        ("dangling", "dangling".into(), "not found"),
        ("directory", "files".into(), "not a regular file"),
    ];
    for (name, path, want) in cases {
        let e = f.fetch(&local(name, &path)).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains(want), "{name}: {text}");
        assert!(
            text.contains(&format!("{name:?}")),
            "names the attachment: {text}"
        );
        assert!(text.contains(&path), "names the path: {text}");
    }
    #[cfg(unix)]
    {
        let r = f.fetch(&local("ok", "inside-link")).await.unwrap();
        assert_eq!(r.size, 4, "a symlink inside the export is fine");
    }
}

/// What the stand-in source helpdesk saw: (path, Authorization header).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A stand-in source helpdesk on loopback that wants [`SECRET`] for its files.
async fn source_server() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let path = req.uri().path().to_owned();
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            log.lock().unwrap().push((path.clone(), auth.clone()));
            let authorised = auth.as_deref() == Some(SECRET);
            let respond = |status: StatusCode, body: Body| {
                Response::builder().status(status).body(body).unwrap()
            };
            let redirect = |to: String| {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, to)
                    .body(Body::empty())
                    .unwrap()
            };
            match path.as_str() {
                "/files/report.pdf" if authorised => Response::builder()
                    .header(header::CONTENT_TYPE, "application/pdf")
                    .body(Body::from(report()))
                    .unwrap(),
                "/files/report.pdf" => respond(
                    StatusCode::UNAUTHORIZED,
                    Body::from(format!("bad credentials {}", auth.unwrap_or_default())),
                ),
                "/img/pic.gif" => respond(StatusCode::OK, Body::from(b"GIF89a-picture".to_vec())),
                "/moved" => redirect("/files/report.pdf".into()),
                "/elsewhere" => redirect(format!("http://localhost:{port}/echo")),
                "/echo" => respond(
                    StatusCode::OK,
                    Body::from(format!("auth: {}", auth.as_deref().unwrap_or("none"))),
                ),
                "/plain-http" => redirect("http://example.com/file".into()),
                "/loop" => redirect("/loop".into()),
                "/echo-500" => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Body::from(format!("oops {}", auth.unwrap_or_default())),
                ),
                "/big" => respond(StatusCode::OK, Body::from(vec![7u8; 4096])),
                "/big-stream" => respond(
                    StatusCode::OK,
                    Body::from_stream(futures::stream::iter(
                        (0..8).map(|_| Ok::<_, std::io::Error>(vec![7u8; 512])),
                    )),
                ),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    respond(StatusCode::OK, Body::empty())
                }
                _ => respond(StatusCode::NOT_FOUND, Body::from("no such file")),
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

fn report() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 253) as u8).collect()
}

fn url_fetcher(root: &Path, temp: &Path, max_bytes: u64) -> Fetcher {
    let options = FetchOptions {
        auth: Some(SourceAuth::parse(&format!("Authorization: {SECRET}"), "").unwrap()),
        allow_loopback_http: true,
        max_bytes,
        read_timeout: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        temp_dir: Some(temp.to_path_buf()),
        ..FetchOptions::default()
    };
    Fetcher::new(root, options).unwrap()
}

#[tokio::test]
async fn urls_are_downloaded_with_the_source_header_to_a_temp_file_and_sent() {
    let (sb, client) = sandbox_and_client().await;
    let (base, seen) = source_server().await;
    let export = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let f = url_fetcher(export.path(), temp.path(), MAX_REQUEST_BYTES);

    let r = f
        .fetch(&remote(
            "report.pdf",
            format!("{base}/files/report.pdf?token=abc"),
        ))
        .await
        .unwrap();
    assert_eq!(r.size, 200_000);
    assert_eq!(r.content_type.as_deref(), Some("application/pdf"));
    assert!(r.path.starts_with(temp.path()), "streamed to a temp file");
    assert_eq!(sha256_of(&r.path), hex::encode(Sha256::digest(report())));
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&("/files/report.pdf".to_string(), Some(SECRET.to_string())))
    );

    // A same-origin redirect keeps the header; another origin never gets it.
    let moved = f
        .fetch(&remote("r2.pdf", format!("{base}/moved")))
        .await
        .unwrap();
    assert_eq!(moved.size, 200_000);
    let other = f
        .fetch(&remote("echo.txt", format!("{base}/elsewhere")))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&other.path).unwrap(), "auth: none");

    let (ticket, _) = plain_ticket(&client).await;
    done(
        client
            .post_multipart(
                &format!("ticket/{ticket}/staff_pvtnote/"),
                &json!({"staff": 2, "html": "from the source"}),
                &[r.file_part()],
            )
            .await
            .unwrap(),
    );
    let files = sent_files(&sb, &client, ticket).await;
    assert_eq!(files[1][0].1, 200_000);
    assert_eq!(files[1][0].2, hex::encode(Sha256::digest(report())));

    // The temp files go when the attachments are dropped.
    let path = r.path.clone();
    drop((r, moved, other));
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn failing_urls_are_per_attachment_errors_without_the_header_value() {
    let (base, _seen) = source_server().await;
    let export = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let f = url_fetcher(export.path(), temp.path(), 1000);
    let cases = [
        ("/missing.png", "HTTP 404"),
        ("/echo-500", "HTTP 500"),
        ("/plain-http", "only https://"),
        ("/loop", "redirects"),
        ("/big", "over the 1000 bytes"),
        ("/big-stream", "over the 1000 bytes"),
        ("/slow", "timed out"),
    ];
    let mut all = String::new();
    for (path, want) in cases {
        let e = f
            .fetch(&remote("file.bin", format!("{base}{path}?sig=TOKEN123")))
            .await
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains(want), "{path}: {text}");
        assert!(text.contains("\"file.bin\""), "{path}: {text}");
        assert!(
            !text.contains("TOKEN123"),
            "signed URL tokens stay hidden: {text}"
        );
        all.push_str(&text);
    }
    // Without the header the source refuses; the message says so, not what was sent.
    let unauthenticated = Fetcher::new(
        export.path(),
        FetchOptions {
            allow_loopback_http: true,
            ..FetchOptions::default()
        },
    )
    .unwrap();
    let e = unauthenticated
        .fetch(&remote("r.pdf", format!("{base}/files/report.pdf")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    // Plain http to anything but loopback, and loopback unless allowed, are refused
    // before connecting.
    for url in [
        "http://example.com/a.png",
        "ftp://example.com/a.png",
        "not a url",
    ] {
        let e = f.fetch(&remote("a.png", url.into())).await.unwrap_err();
        assert!(matches!(e, AttachmentError::BadUrl { .. }), "{url}: {e}");
    }
    let strict = Fetcher::new(export.path(), FetchOptions::default()).unwrap();
    let e = strict
        .fetch(&remote("a.png", format!("{base}/img/pic.gif")))
        .await
        .unwrap_err();
    assert!(matches!(e, AttachmentError::BadUrl { .. }), "{e}");

    all.push_str(&format!("{f:?}"));
    for needle in [SECRET, SECRET_TOKEN] {
        assert!(!all.contains(needle), "header value leaked: {all}");
    }
    assert_eq!(
        std::fs::read_dir(temp.path()).unwrap().count(),
        0,
        "no partial files left"
    );
}

#[tokio::test]
async fn inline_images_are_uploaded_and_their_src_rewritten() {
    let (sb, client) = sandbox_and_client().await;
    let (base, _seen) = source_server().await;
    let export = tempfile::tempdir().unwrap();
    std::fs::create_dir(export.path().join("images")).unwrap();
    std::fs::write(
        export.path().join("images/logo.png"),
        b"\x89PNG\r\n\x1a\nlogo",
    )
    .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let f = url_fetcher(export.path(), temp.path(), MAX_REQUEST_BYTES);
    let html = format!(
        r#"<p>Look:</p><img src="images/logo.png"><img alt=x src='{base}/img/pic.gif'><img src="data:image/png;base64,AAAA">"#
    );
    let images = inline_images(&html);
    assert_eq!(images.len(), 2);
    let mut replacements = vec![];
    for image in &images {
        let resolved = f.fetch(&image.attachment()).await.unwrap();
        let part = FilePart {
            field: INLINE_FILE_FIELD,
            ..resolved.file_part()
        };
        let answer = done(
            client
                .post_multipart("ticket-inline-attachment", &json!({}), &[part])
                .await
                .unwrap(),
        );
        let url = answer["url"].as_str().unwrap().to_owned();
        replacements.push((image.src.clone(), url));
    }
    let rewritten = rewrite_src(&html, &replacements);
    assert!(inline_images(&rewritten).is_empty(), "{rewritten}");
    assert!(rewritten.contains("data:image/png;base64,AAAA"));
    let t = done(
        client
            .post_json(
                "tickets/",
                &json!({"subject": "Inline", "html": rewritten, "category": 1,
                    "email": "cy@example.com", "name": "Cy"}),
            )
            .await
            .unwrap(),
    );
    let body = t["updates"][0]["message"]["html"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        body.matches("/get_hdp_temporarily_attachment/").count(),
        2,
        "{body}"
    );
    assert!(body.contains(&sb.url));
}

#[tokio::test]
async fn a_throttled_multipart_write_is_resent_with_its_files_read_again() {
    let sb = start_sandbox(|config| {
        config.limits.post_per_min = 1;
        config.limits.get_per_min = 0;
        config.limits.lockout = Duration::from_millis(300);
    })
    .await;
    let client = client_for(
        &sb,
        ClientOptions {
            lockout: Duration::from_secs(1),
            ..ClientOptions::default()
        },
    );
    let export = tempfile::tempdir().unwrap();
    // Large enough that a server answering before reading it would break the pipe.
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(export.path().join("a.bin"), &data).unwrap();
    let a = fetcher(export.path())
        .fetch(&local("a.bin", "a.bin"))
        .await
        .unwrap();
    let (ticket, _) = plain_ticket(&client).await;
    // The first attempt is answered 429 (the minute's one POST is used): nothing was
    // stored, so the client sends again after the lockout, with a fresh body.
    done(
        client
            .post_multipart(
                &format!("ticket/{ticket}/staff_pvtnote/"),
                &json!({"staff": 2, "html": "retry"}),
                &[a.file_part()],
            )
            .await
            .unwrap(),
    );
    let stats = sb.stats();
    assert_eq!(
        stats.served("POST ticket/{n}/staff_pvtnote/", "429"),
        1,
        "{stats:?}"
    );
    assert_eq!(
        stats.served("POST ticket/{n}/staff_pvtnote/", "200"),
        1,
        "{stats:?}"
    );
    let files = sent_files(&sb, &client, ticket).await;
    assert_eq!(
        files[1],
        vec![(
            "a.bin".to_string(),
            2_000_000,
            hex::encode(Sha256::digest(&data))
        )]
    );
}

#[tokio::test]
async fn a_dropped_multipart_write_is_unknown_and_not_resent() {
    // A sandbox that drops every write after storing it.
    let sb = start_sandbox(|config| {
        unlimited(config);
        config.faults.drop_rate = 1.0;
    })
    .await;
    let client = client_for(&sb, ClientOptions::default());
    let export = tempfile::tempdir().unwrap();
    sparse(&export.path().join("a.bin"), 10);
    let a = fetcher(export.path())
        .fetch(&local("a.bin", "a.bin"))
        .await
        .unwrap();
    let out = client
        .post_multipart(
            "tickets/",
            &json!({"subject": "s", "text": "t", "category": 1, "email": "d@example.com",
                "name": "D"}),
            &[a.file_part()],
        )
        .await
        .unwrap();
    assert!(matches!(out, WriteOutcome::Unknown(_)), "{out:?}");
    assert_eq!(
        client.stats().posts_sent,
        1,
        "an unknown write is never resent"
    );
    assert_eq!(
        sb.stats().tickets,
        1,
        "it was stored: resending would duplicate it"
    );
}
