//! `slotpool-floor`: an HTTP server that does no work, the floor under `make load`.
//!
//! It answers the load generator's request/release pairs the way slotpool does (`POST
//! /api/v1/products/{p}/slot`: `200` with a 73-byte JSON body, `DELETE`: `204`, with the
//! same headers) and decides, stores and fsyncs nothing. Run through the same load
//! generator on the same machine, it shows what any server pays for HTTP/1.1 over
//! loopback TCP at that concurrency, so that slotpool's figures can be read against it:
//! what is left above the floor is slotpool's own work, and no server can go below it.
//!
//! Two kinds:
//! - `tcp`: hand-written HTTP on one tokio thread (read a head, write a fixed answer): the
//!   kernel's share alone (sockets, loopback TCP, epoll) and the least a user-space server
//!   can add to it;
//! - `actix`: actix-web 4 with one worker and one route, slotpool's own HTTP stack with an
//!   empty handler: what the framework adds on top.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::process::ExitCode;

/// The same allocator as slotpool's server, so that the `actix` floor differs from it only
/// by slotpool's own work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The answer to a slot request, the size slotpool's is.
const GRANTED: &str =
    r#"{"state":"granted","revoke_at":"2026-12-07T11:10:00.000Z","warned":false}"#;

/// Serves fixed answers to request/release pairs, for `make bench-compare`'s floor rows.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to listen, `host:port`.
    #[arg(long)]
    listen: SocketAddr,
    /// Which HTTP stack answers.
    #[arg(long, value_enum)]
    kind: Kind,
}

/// Which HTTP stack answers.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    /// Hand-written HTTP/1.1 on one tokio thread.
    Tcp,
    /// actix-web with one worker.
    Actix,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let served = match args.kind {
        Kind::Tcp => tcp::serve(args.listen),
        Kind::Actix => actix::serve(args.listen),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slotpool-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

mod tcp {
    //! Hand-written HTTP/1.1: enough for the load generator's requests, nothing more.

    use super::GRANTED;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Serves on one thread until killed.
    pub fn serve(listen: SocketAddr) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            println!("slotpool-floor: tcp listening on http://{listen}");
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    // A connection that breaks ends; the load generator counts it.
                    let _ = connection(stream).await;
                });
            }
        })
    }

    /// Answers one connection's requests, one at a time, as they come.
    async fn connection(mut stream: TcpStream) -> std::io::Result<()> {
        let granted = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\n\
             content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n\
             x-request-id: 022e3e25-ccde-4b80-a226-2f58167e8602\r\ncontent-type: \
             application/json\r\ndate: Mon, 07 Dec 2026 10:39:34 GMT\r\n\r\n{GRANTED}",
            GRANTED.len()
        );
        let released = "HTTP/1.1 204 No Content\r\nx-content-type-options: nosniff\r\n\
             content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n\
             x-request-id: d2587352-8f53-4a14-8c2d-95b6aa59e981\r\n\
             date: Mon, 07 Dec 2026 10:39:34 GMT\r\n\r\n";
        let mut buf = Vec::with_capacity(4096);
        loop {
            // The load generator's requests have no body (`Content-Length: 0`).
            let end = loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                if buf.len() > 64 * 1024 || stream.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            };
            let answer = if buf.starts_with(b"DELETE ") {
                released.as_bytes()
            } else {
                granted.as_bytes()
            };
            buf.drain(..end);
            stream.write_all(answer).await?;
        }
    }
}

mod actix {
    //! actix-web with an empty handler.

    use super::GRANTED;
    use actix_web::{http::header, web, App, HttpResponse, HttpServer};
    use std::net::SocketAddr;

    /// Serves on one worker until interrupted.
    pub fn serve(listen: SocketAddr) -> std::io::Result<()> {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| {
                App::new().service(
                    web::resource("/api/v1/products/{product}/slot")
                        .route(web::post().to(granted))
                        .route(web::delete().to(released)),
                )
            })
            .workers(1)
            .backlog(4096)
            .bind(listen)?
            .run();
            println!("slotpool-floor: actix listening on http://{listen}");
            server.await
        })
    }

    fn headers(r: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
        r.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ))
            .insert_header(("x-request-id", "022e3e25-ccde-4b80-a226-2f58167e8602"))
    }

    async fn granted() -> HttpResponse {
        headers(&mut HttpResponse::Ok())
            .content_type("application/json")
            .body(GRANTED)
    }

    async fn released() -> HttpResponse {
        headers(&mut HttpResponse::NoContent()).finish()
    }
}
