//! The code version populate records with each job (`jobs.version_method`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dj_config::VersionMethod;

/// The longest version the job table (`version : varchar(64)`) and `_job_version` hold.
pub const VERSION_LENGTH: usize = 64;

/// How long `git` may take before the version is recorded empty (as DataJoint's 5 s).
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The version `method` gives, as DataJoint 2.3.5 computes it: empty for
/// [`VersionMethod::None`]; for [`VersionMethod::Git`], the output of `git rev-parse --short
/// HEAD` in the process's working directory, or empty when git is missing, the directory is not
/// in a repository, or git takes more than 5 seconds. At most 64 characters.
///
/// This runs a process and waits for it: call it once per run (populate does), not per key.
pub fn job_version(method: VersionMethod) -> String {
    match method {
        VersionMethod::None => String::new(),
        VersionMethod::Git => git_short_hash().unwrap_or_default(),
    }
}

/// [`job_version`] off the async runtime's worker threads.
pub(crate) async fn job_version_async(method: VersionMethod) -> String {
    if method == VersionMethod::None {
        return String::new();
    }
    tokio::task::spawn_blocking(move || job_version(method))
        .await
        .unwrap_or_default()
}

fn git_short_hash() -> Option<String> {
    let mut child = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| tracing::debug!(error = %e, "jobs.version_method = git: cannot run git"))
        .ok()?;
    let deadline = Instant::now() + GIT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                tracing::debug!("jobs.version_method = git: git did not answer in time");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    if !status.success() {
        return None;
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    Some(out.trim().chars().take(VERSION_LENGTH).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_empty() {
        assert_eq!(job_version(VersionMethod::None), "");
    }

    #[test]
    fn git_is_the_short_hash_of_the_working_directory() {
        // The crate's sources are in a git work tree when tests run from a checkout; compare
        // with git itself, or with the empty version when git or the repository is missing.
        let expected = Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let got = job_version(VersionMethod::Git);
        assert_eq!(got, expected);
        assert!(got.len() <= VERSION_LENGTH);
        assert!(got.chars().all(|c| c.is_ascii_hexdigit()), "{got}");
    }
}
