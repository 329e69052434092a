//! deploy/ as README promises it: the compose file publishes `/metrics` and `/healthz` on
//! 127.0.0.1:9100 by default, where the image serves them, and the build context leaves out the
//! build cache and `.env` (secrets) while keeping everything the Dockerfile copies. No Docker
//! here: these read the files Docker reads.

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn compose_publishes_the_metrics_port_on_loopback_where_the_image_serves_it() {
    let compose = read("deploy/docker-compose.yml");
    let dockerfile = read("deploy/Dockerfile");

    assert!(
        dockerfile.contains("METRICS_ADDR=0.0.0.0:9100"),
        "{dockerfile}"
    );
    let published: Vec<&str> = compose
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- \"") && l.ends_with(":9100:9100\""))
        .collect();
    assert_eq!(
        published,
        ["- \"${METRICS_PUBLISH:-127.0.0.1}:9100:9100\""],
        "{compose}"
    );
}

#[test]
fn the_build_context_leaves_out_target_and_env_but_not_what_the_image_needs() {
    let ignore = read(".dockerignore");
    let dockerfile = read("deploy/Dockerfile");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();

    for left_out in ["target/", ".env"] {
        assert!(
            rules.contains(&left_out),
            "{left_out} goes into the build context"
        );
    }
    for copied in dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
    {
        let top = copied.trim_end_matches('/');
        assert!(
            !rules.iter().any(|r| r.trim_end_matches('/') == top),
            "the Dockerfile copies {copied}, which .dockerignore leaves out"
        );
    }
}

#[test]
fn the_image_build_copies_every_migration_directory_the_binary_embeds() {
    // `sqlx::migrate!` reads its directory at compile time: one the Dockerfile does not copy
    // fails the image build (migrations-postgres/ was missing once).
    let dockerfile = read("deploy/Dockerfile");
    let mut embedded = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for part in text.split("sqlx::migrate!(\"./").skip(1) {
                    if let Some(name) = part.split('"').next() {
                        embedded.push(name.to_owned());
                    }
                }
            }
        }
    }
    embedded.sort();
    embedded.dedup();
    assert!(
        embedded.len() >= 2,
        "both backends' migrations: {embedded:?}"
    );
    for name in embedded {
        assert!(
            dockerfile.contains(&format!("COPY {name} ./{name}")),
            "the Dockerfile does not copy {name}/, which the binary embeds"
        );
    }
}

#[test]
fn the_replicas_compose_file_gives_each_replica_its_own_name_on_one_postgresql() {
    let compose = read("deploy/docker-compose.replicas.yml");
    let names: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("REPLICA_NAME: "))
        .collect();
    assert_eq!(names, ["bot-a", "bot-b"], "{compose}");
    let urls: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("DATABASE_URL: "))
        .collect();
    assert_eq!(urls.len(), 2, "{compose}");
    assert!(
        urls.iter()
            .all(|u| *u == "postgres://wxbot:${POSTGRES_PASSWORD}@db:5432/wxbot"),
        "both replicas share the one database: {urls:?}"
    );
    assert!(compose.contains("condition: service_healthy"));
}
