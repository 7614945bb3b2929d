//! Keyword tree → typed model. Each top-level block is handed to the module that owns it; a
//! block nobody owns is reported as unknown. Cross-block checks run once everything is read.

pub mod ctx;

mod cluster;
mod global;
mod lvs;
mod vrrp;

use crate::ast::Node;
use crate::model::Config;
pub use ctx::Ctx;

/// Lowers the top-level nodes of a configuration.
pub fn lower(nodes: &[Node], ctx: &mut Ctx<'_>) -> Config {
    let mut cfg = Config::default();
    for node in nodes {
        let handled = global::lower_top(node, ctx, &mut cfg)
            || vrrp::lower_top(node, ctx, &mut cfg)
            || lvs::lower_top(node, ctx, &mut cfg)
            || cluster::lower_top(node, ctx, &mut cfg);
        if !handled {
            ctx.unknown_keyword(node, "the top level");
        }
    }
    global::validate(&cfg, ctx);
    vrrp::validate(&cfg, ctx);
    lvs::validate(&cfg, ctx);
    cluster::validate(&cfg, ctx);
    cfg
}

/// Writes `cfg` as keepalived syntax that lowers back to an equal model.
pub fn print(cfg: &Config) -> String {
    let mut p = crate::print::Printer::default();
    global::print(cfg, &mut p);
    vrrp::print(cfg, &mut p);
    lvs::print(cfg, &mut p);
    cluster::print(cfg, &mut p);
    p.finish()
}
