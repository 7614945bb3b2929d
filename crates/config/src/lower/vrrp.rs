//! PROVISIONAL stub, being filled in.

use super::Ctx;
use crate::ast::Node;
use crate::model::Config;
use crate::print::Printer;

pub(crate) fn lower_top(_node: &Node, _ctx: &mut Ctx<'_>, _cfg: &mut Config) -> bool {
    false
}

pub(crate) fn validate(_cfg: &Config, _ctx: &mut Ctx<'_>) {}

pub(crate) fn print(_cfg: &Config, _p: &mut Printer) {}
