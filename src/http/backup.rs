//! `POST /admin/v1/backup`: the running service streams a consistent backup of its
//! journal and snapshots (format and consistency argument in `crate::backup`). sled allows
//! one process per database, so only the service itself can read a live data dir.

use super::auth::Admin;
use super::AppState;
use crate::problem::Problem;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use std::io::Write;
use tokio::sync::mpsc;

/// Hands what the exporter writes to the response stream, a chunk at a time; the bounded
/// channel holds the exporter back while the client is slower.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `POST /admin/v1/backup`: `application/octet-stream`, a `slotpool-backup 1` file. An
/// export that fails half-way ends the stream with an error, so the client holds a file
/// that fails its checksum, never one that looks complete.
pub async fn backup(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let journal = state.services.products.journal().clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let cause = super::observe::cause();
    let spawned = std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || {
            let writer = ChannelWriter { tx: tx.clone() };
            match journal.export(writer) {
                Ok(summary) => tracing::info!(%cause, %summary, "backup exported"),
                Err(e) => {
                    tracing::error!(%cause, error = %e, "backup failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
    spawned.map_err(|e| Problem::backup_unavailable(&e))?;
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"slotpool.backup\"",
        ))
        .streaming(body))
}
