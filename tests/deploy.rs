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
