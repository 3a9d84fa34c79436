//! Raises the soft open-files limit to the hard limit (thousands of sockets).
#![allow(dead_code)]

/// Returns (old, new) soft limits when it changed anything.
pub fn raise_nofile() -> Option<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current?, limit.maximum);
    let target = hard.unwrap_or(1 << 20);
    if soft >= target {
        return None;
    }
    limit.current = Some(target);
    setrlimit(Resource::Nofile, limit).ok()?;
    Some((soft, target))
}
