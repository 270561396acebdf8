//! The air-gap guard (DESIGN section 8): the election key is used only
//! while no network interface other than loopback is up.

use anyhow::{bail, Result};

/// The network interfaces that are up, other than loopback.
pub fn interfaces_up() -> Vec<String> {
    let mut up = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "lo" {
                continue;
            }
            let state = std::fs::read_to_string(e.path().join("operstate")).unwrap_or_default();
            let state = state.trim();
            if state == "up"
                || (state == "unknown"
                    && std::fs::read_to_string(e.path().join("carrier"))
                        .is_ok_and(|c| c.trim() == "1"))
            {
                up.push(name);
            }
        }
    }
    up.sort();
    up
}

/// Refuses to go on while a non-loopback interface is up, unless `allow`.
pub fn air_gap_guard(allow: bool) -> Result<()> {
    let up = interfaces_up();
    if up.is_empty() {
        return Ok(());
    }
    if allow {
        tracing::warn!(interfaces = ?up, "network interfaces are up; continuing because --allow-network was given");
        return Ok(());
    }
    bail!(
        "this machine is connected to a network ({} up). The election key may only be used on an air-gapped machine: \
         unplug the network cable and turn off wireless, then run this again. (--allow-network overrides this for tests only.)",
        up.join(", ")
    )
}
