//! This process's name among its replicas, for consumer groups and run
//! records: `<hostname>-<pid>`.

/// `<hostname>-<pid>`: `HOSTNAME`, else the kernel's host name, else `host`.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ends_with_the_pid() {
        let name = super::instance_name();
        let pid = std::process::id().to_string();
        assert!(
            name.ends_with(&format!("-{pid}")) && name.len() > pid.len() + 1,
            "{name}"
        );
    }
}
