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
