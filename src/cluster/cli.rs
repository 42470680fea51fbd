//! `slotpool cluster status|add|remove`: the operator's membership commands, through the
//! local member's HTTP (`/admin/v1/cluster`), which forwards changes to the leader.

use crate::config::FileConfig;
use crate::failure::Failure;
use std::path::{Path, PathBuf};

/// What `slotpool cluster` does.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCmd {
    /// Leader, term, commit and applied index, each member and its replication lag.
    Status {
        /// The member's config file.
        #[arg(long, env = "SLOTPOOL_CONFIG")]
        config: PathBuf,
    },
    /// Add a member: it catches up as a learner, then votes (joint consensus).
    Add {
        /// The config file of any running member.
        #[arg(long, env = "SLOTPOOL_CONFIG")]
        config: PathBuf,
        /// The new member's node id.
        #[arg(long)]
        id: u64,
        /// Its advertised HTTP address (host:port).
        #[arg(long)]
        http: String,
        /// Its advertised Raft address (host:port).
        #[arg(long)]
        raft: String,
    },
    /// Remove a member (a dead one too, before replacing it).
    Remove {
        /// The config file of any running member.
        #[arg(long, env = "SLOTPOOL_CONFIG")]
        config: PathBuf,
        /// The member's node id.
        #[arg(long)]
        id: u64,
    },
}

/// Where the member listens and the admin token to present.
fn target(config: &Path) -> Result<(String, String), Failure> {
    let file = FileConfig::load(config)?;
    let listen = file
        .listen
        .clone()
        .unwrap_or_else(|| crate::config::DEFAULT_LISTEN.to_string());
    let data_dir = file
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./data"));
    let token_file = file
        .admin_token_file
        .clone()
        .unwrap_or_else(|| data_dir.join("admin_token"));
    let token = crate::secrets::admin_token_for_tools(&token_file).map_err(|e| {
        Failure::Input(format!(
            "no admin token: set SLOTPOOL_ADMIN_TOKEN (cannot read {}: {e})",
            token_file.display()
        ))
    })?;
    Ok((format!("http://{listen}"), token))
}

/// Runs one `slotpool cluster` command; prints the member's answer.
pub fn run(cmd: &ClusterCmd) -> Result<(), Failure> {
    let (config, request) = match cmd {
        ClusterCmd::Status { config } => (config, None),
        ClusterCmd::Add {
            config,
            id,
            http,
            raft,
        } => (
            config,
            Some((
                "POST",
                "/admin/v1/cluster/members".to_string(),
                serde_json::json!({"id": id, "http": http, "raft": raft}).to_string(),
            )),
        ),
        ClusterCmd::Remove { config, id } => (
            config,
            Some((
                "DELETE",
                format!("/admin/v1/cluster/members/{id}"),
                String::new(),
            )),
        ),
    };
    let (base, token) = target(config)?;
    let auth = format!("Bearer {token}");
    let answer = match &request {
        None => ureq::get(&format!("{base}/admin/v1/cluster"))
            .set("Authorization", &auth)
            .call(),
        Some((method, path, body)) => ureq::request(method, &format!("{base}{path}"))
            .set("Authorization", &auth)
            .set("Content-Type", "application/json")
            .send_string(body),
    };
    match answer {
        Ok(resp) => {
            let text = resp
                .into_string()
                .map_err(|e| Failure::Runtime(format!("reading the answer: {e}")))?;
            println!("{text}");
            Ok(())
        }
        Err(ureq::Error::Status(code, resp)) => {
            let text = resp.into_string().unwrap_or_default();
            Err(Failure::Runtime(format!(
                "the member answered {code}: {text}"
            )))
        }
        Err(e) => Err(Failure::Runtime(format!(
            "cannot reach the member at {base}: {e}"
        ))),
    }
}
