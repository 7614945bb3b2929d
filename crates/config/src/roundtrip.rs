//! The whole configuration round-trips: any valid model (global_defs, the VRRP half, the LVS
//! half and, sometimes, a cluster block) printed as keepalived syntax and read back is the same
//! model, with no diagnostic at all.

use std::path::Path;

use proptest::prelude::*;

use crate::model::{Config, MODEL_VERSION, Origin};
use crate::model::{cluster, global, lvs, vrrp};
use crate::{LoadOptions, load_str};

fn config() -> impl Strategy<Value = Config> {
    (
        global::arb::global_defs(),
        prop_oneof![
            vrrp::arb::vrrp_section().prop_map(|v| (v, None)),
            (
                vrrp::arb::vrrp_section_for_cluster(),
                cluster::arb::cluster()
            )
                .prop_map(|(v, c)| (v, Some(c))),
        ],
        lvs::arb::lvs_section(),
    )
        .prop_map(|(global, (mut vrrp, cluster), lvs)| {
            // Every FILE_CHECK needs its track_file block.
            for c in lvs
                .virtual_servers
                .iter()
                .flat_map(|v| &v.real_servers)
                .flat_map(|r| &r.checkers)
            {
                if let lvs::check::CheckerKind::File(f) = &c.kind
                    && vrrp.track_file(&f.track_file).is_none()
                {
                    vrrp.track_files.push(vrrp::TrackFile {
                        name: f.track_file.clone(),
                        file: format!("/run/{}", f.track_file).into(),
                        weight: 1,
                        reverse: false,
                        init_file: None,
                        origin: Origin::default(),
                    });
                }
            }
            Config {
                version: MODEL_VERSION,
                global,
                vrrp,
                lvs,
                cluster,
            }
        })
}

/// Values equal to what reading the text without them gives are left out, including defaults
/// that come from global_defs or strict mode; a value that differs from such a default is
/// written even when it is keepalived's plain default (`strict_mode off`).
#[test]
fn printing_writes_only_what_differs_from_the_defaults() {
    let input = "\
global_defs {
    vrrp_strict
    vrrp_garp_master_delay 5
    smtp_connect_timeout 30
}
vrrp_instance VI {
    interface eth0
    virtual_router_id 7
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.0.0.1
    }
    lower_prio_no_advert on
    garp_lower_prio_repeat 0
}
vrrp_instance OWN {
    strict_mode off
    interface eth0
    virtual_router_id 8
    priority 255
    virtual_ipaddress {
        10.0.0.2
    }
    accept
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    delay_loop 60
    quorum 1
    real_server 10.1.0.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 5
            delay_loop 60
            retry 1
        }
    }
    real_server 10.1.0.2 80 {
        weight 2
        lvs_method NAT
        HTTP_GET {
            url {
                path /
                status_code 200-299
            }
            delay_before_retry 3
            delay_loop 10
        }
    }
}
";
    let loaded = load_str(Path::new("t.conf"), input, &LoadOptions::default());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.report());
    let expected = "\
global_defs {
    vrrp_strict
}

vrrp_instance VI {
    interface eth0
    virtual_router_id 7
    priority 100
    virtual_ipaddress {
        10.0.0.1/32
    }
}

vrrp_instance OWN {
    interface eth0
    virtual_router_id 8
    priority 255
    strict_mode off
    virtual_ipaddress {
        10.0.0.2/32
    }
}

virtual_server 10.0.0.1 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    real_server 10.1.0.1 80 {
        TCP_CHECK {
        }
    }
    real_server 10.1.0.2 80 {
        weight 2
        HTTP_GET {
            delay_loop 10
            url {
                path /
            }
        }
    }
}

";
    let text = crate::to_keepalived(&loaded.config);
    assert_eq!(text, expected);
    let again = load_str(Path::new("t.conf"), &text, &LoadOptions::default());
    assert!(again.diagnostics.is_empty(), "{}", again.report());
    assert_eq!(again.config, loaded.config);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn print_then_load_is_identity(cfg in config()) {
        let text = crate::to_keepalived(&cfg);
        let loaded = load_str(Path::new("roundtrip.conf"), &text, &LoadOptions::default());
        prop_assert!(loaded.diagnostics.is_empty(), "{}\n{}", loaded.report(), text);
        prop_assert_eq!(&loaded.config, &cfg, "{}", text);
        // And the replicated form: JSON carries the same model.
        let json = serde_json::to_string(&cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Config = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, cfg);
    }
}
