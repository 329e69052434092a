//! A throwaway PostgreSQL server for the tests: Debian's own binaries, a fresh cluster in a temp
//! directory, listening on a free loopback port, stopped and removed when dropped. Tests run the
//! store against the real server, never a stand-in; where PostgreSQL is not installed a test
//! says it was skipped and why, except under `CI=true`, where missing PostgreSQL is a failure
//! (`.ci/run` installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether the suites run on PostgreSQL: `WXBOT_TEST_DB=postgres` puts every [`super::TestApp`]
/// (and every bot process it starts) on a database of its own on one throwaway server; without
/// it they run on SQLite, the default.
pub fn suites_on_postgres() -> bool {
    std::env::var("WXBOT_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// One throwaway server for the whole test binary, started at first use. A static is never
/// dropped, so a reaper process stops the server and removes its directory once this process
/// has ended, however it ended.
pub fn shared() -> &'static ThrowawayPostgres {
    static SHARED: OnceLock<ThrowawayPostgres> = OnceLock::new();
    SHARED.get_or_init(|| {
        let server = ThrowawayPostgres::start()
            .unwrap_or_else(|e| panic!("WXBOT_TEST_DB=postgres, but {e}"));
        server.reap_after(std::process::id());
        server
    })
}

/// Whether PostgreSQL is here for `test`; where it is not, says the test was skipped and why —
/// except under `CI=true`, where a missing PostgreSQL fails the test (`.ci/run` installs it).
#[allow(dead_code)] // each test binary compiles this module; not every one asks
pub fn installed_or_skip(test: &str) -> bool {
    if find_bin().is_some() {
        return true;
    }
    let why = PostgresUnavailable::NotInstalled;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (CI runs every PostgreSQL test)");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A new, empty database on the shared server, named for this process and a counter.
pub async fn fresh_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    shared().database(&name).await
}

/// A running PostgreSQL cluster of its own; stopped (immediately) and deleted on drop.
pub struct ThrowawayPostgres {
    bin: PathBuf,
    data: PathBuf,
    /// Holds the cluster's directory; removed after the server stops.
    _dir: tempfile::TempDir,
    port: u16,
    as_user: Option<String>,
}

/// Why no throwaway server could be started.
#[derive(Debug, thiserror::Error)]
pub enum PostgresUnavailable {
    /// No `initdb`/`pg_ctl` on this machine.
    #[error(
        "PostgreSQL is not installed here (no initdb in PATH or /usr/lib/postgresql/*/bin); install Debian's postgresql package to run these tests"
    )]
    NotInstalled,
    /// Installed, but the cluster did not start.
    #[error("PostgreSQL did not start: {0}")]
    Failed(String),
}

impl ThrowawayPostgres {
    /// Creates a cluster in a temp directory and starts it on a free port. As root, the server
    /// runs as `nobody` (PostgreSQL refuses to run as root).
    pub fn start() -> Result<Self, PostgresUnavailable> {
        Self::start_with(false)
    }

    /// [`ThrowawayPostgres::start`] with TLS switched on: a self-signed certificate made by
    /// `openssl` (which Debian's postgresql package brings, through ssl-cert). Plain connections
    /// are still taken.
    #[allow(dead_code)] // each test binary compiles this module; not every one asks
    pub fn start_with_tls() -> Result<Self, PostgresUnavailable> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Result<Self, PostgresUnavailable> {
        let bin = find_bin().ok_or(PostgresUnavailable::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("wxplugin-pg-")
            .tempdir()
            .map_err(|e| PostgresUnavailable::Failed(format!("temp dir: {e}")))?;
        let data = dir.path().join("data");
        let as_user = is_root().then(|| "nobody".to_owned());
        if as_user.is_some() {
            // The server's user must own its directory (and reach it through the temp dir).
            chown_nobody(dir.path()).map_err(PostgresUnavailable::Failed)?;
        }
        let port = free_port().map_err(|e| PostgresUnavailable::Failed(format!("port: {e}")))?;
        let server = Self {
            bin,
            data,
            _dir: dir,
            port,
            as_user,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{}' -c fsync=off -c max_connections=200",
            server._dir.path().display()
        );
        if tls {
            server.self_signed_certificate()?;
            options.push_str(" -c ssl=on");
        }
        server.run(
            "pg_ctl",
            &[
                "-D",
                &server.data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &server._dir.path().join("log").to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        server.wait_ready()?;
        Ok(server)
    }

    /// `server.crt` and `server.key` in the data directory, as the server's user may read them.
    fn self_signed_certificate(&self) -> Result<(), PostgresUnavailable> {
        let key = self.data.join("server.key");
        let crt = self.data.join("server.crt");
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| PostgresUnavailable::Failed(format!("openssl: {e}")))?;
        if !made.success() {
            return Err(PostgresUnavailable::Failed(
                "openssl could not make a certificate".into(),
            ));
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| PostgresUnavailable::Failed(format!("server.key: {e}")))?;
        if self.as_user.is_some() {
            for file in [&key, &crt] {
                chown_nobody(file).map_err(PostgresUnavailable::Failed)?;
            }
        }
        Ok(())
    }

    /// Starts a server, or, where PostgreSQL is not installed and `CI` is not `true`, prints why
    /// the calling test is skipped and returns `None`. Under `CI=true` a missing or failing
    /// PostgreSQL panics: CI never skips these tests.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(server) => Some(server),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{test}: {e} (CI runs every PostgreSQL test)")
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: {e}");
                None
            }
        }
    }

    /// A URL for a new, empty database `name` on this server (created now).
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("the throwaway server takes connections");
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("a new database");
        self.url(name)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Leaves a process behind that waits for process `pid` to end, then stops this server and
    /// removes its directory.
    fn reap_after(&self, pid: u32) {
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = match &self.as_user {
            Some(user) => format!("setpriv --reuid={user} --regid=nogroup --clear-groups -- "),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {as_user}{} -D {} -m immediate -w stop >/dev/null 2>&1; rm -rf {}",
            quote(&pg_ctl),
            quote(&self.data),
            quote(self._dir.path()),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// The port it listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn wait_ready(&self) -> Result<(), PostgresUnavailable> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PostgresUnavailable::Failed(format!(
                    "nothing listens on port {} after 30 s",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), PostgresUnavailable> {
        let program = self.bin.join(tool);
        let mut command = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    "--regid=nogroup",
                    "--clear-groups",
                    "--",
                ])
                .arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let output = command
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| PostgresUnavailable::Failed(format!("{}: {e}", program.display())))?;
        if output.status.success() {
            return Ok(());
        }
        Err(PostgresUnavailable::Failed(format!(
            "{tool} {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        )))
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned directories
/// (the newest version).
fn find_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_tools(dir))
        .collect();
    debian.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or_default()
    });
    if let Some(dir) = debian.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_tools(dir))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_nobody(dir: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown nobody {}: {status}", dir.display()))
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
