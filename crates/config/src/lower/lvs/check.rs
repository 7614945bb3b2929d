//! Checker blocks inside `real_server` (keepalived.md §2.6).

use super::Ctx;
use super::values::{hex_bytes, hex_text, max_timer};
use crate::ast::Node;
use crate::model::common::{Micros, Origin, Script};
use crate::model::lvs::{
    Checker, CheckerKind, Connection, DnsCheck, DnsType, FileCheck, HttpCheck, HttpProtocol,
    MAX_WEIGHT, MiscCheck, StatusRange, Timing, UdpCheck, Url, UrlRegex,
};
use crate::quote::split_quoted;

/// Timing written at one level (service, real server or checker); `None` = inherit.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TimingDraft {
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Micros>,
    pub warmup: Option<Micros>,
    pub delay_loop: Option<Micros>,
    pub connect_timeout: Option<Micros>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

/// A checker as written, before inheritance.
pub(super) struct CheckerDraft {
    kind: CheckerKind,
    connection: Option<Connection>,
    timing: TimingDraft,
    misc_timeout: Option<Micros>,
    origin: Origin,
}

impl CheckerDraft {
    /// Fills in what the checker did not write: from `up` (the real server's settings with
    /// the service's already applied), then the checker type's defaults (keepalived
    /// `check_data.c`, after parsing). `service_delay_loop` bounds a MISC_CHECK script
    /// without `misc_timeout`; `virtualhost` (the real server's, else the service's) is the
    /// Host of HTTP checks that name none (`check_http.c`).
    pub(super) fn resolve(
        self,
        up: &TimingDraft,
        service_delay_loop: Micros,
        virtualhost: Option<&String>,
    ) -> Checker {
        let t = self.timing;
        let delay_loop = t.delay_loop.or(up.delay_loop).unwrap_or(service_delay_loop);
        let timing = Timing {
            retry: t.retry.or(up.retry).unwrap_or(self.kind.default_retry()),
            delay_before_retry: t
                .delay_before_retry
                .or(up.delay_before_retry)
                .or(self.kind.default_delay_before_retry())
                .unwrap_or(delay_loop),
            warmup: t.warmup.or(up.warmup).unwrap_or(delay_loop),
            delay_loop,
            alpha: t.alpha.or(up.alpha).unwrap_or(false),
            log_all_failures: t.log_all_failures.unwrap_or(false),
        };
        let mut kind = self.kind;
        match &mut kind {
            CheckerKind::Misc(m) => m.timeout = self.misc_timeout.unwrap_or(service_delay_loop),
            CheckerKind::Http(h) | CheckerKind::Ssl(h) if h.virtualhost.is_none() => {
                h.virtualhost = virtualhost.cloned();
            }
            _ => {}
        }
        let connection = self.connection.map(|mut c| {
            c.connect_timeout = t
                .connect_timeout
                .or(up.connect_timeout)
                .unwrap_or(c.connect_timeout);
            c
        });
        let has_timing = kind.has_timing();
        Checker {
            kind,
            connection,
            timing: has_timing.then_some(timing),
            origin: self.origin,
        }
    }
}

/// Reads a timing keyword shared by services, real servers and checkers; false when `node`
/// is something else. `checker_level` selects the checker's ranges (retry may be 0 there).
pub(super) fn timing_keyword(
    node: &Node,
    ctx: &mut Ctx<'_>,
    t: &mut TimingDraft,
    checker_level: bool,
) -> bool {
    match node.word() {
        "retry" => {
            if let Some(tok) = ctx.single(node, "a number of retries") {
                let lo = if checker_level { 0 } else { 1 };
                if let Some(v) = ctx.uint_in(tok, lo, u64::from(u32::MAX), "retry") {
                    t.retry = Some(v as u32);
                }
            }
        }
        "delay_before_retry" => {
            if let Some(tok) = ctx.single(node, "seconds") {
                t.delay_before_retry = ctx
                    .timer_in(tok, Micros(0), max_timer(), "delay_before_retry")
                    .or(t.delay_before_retry);
            }
        }
        "warmup" => {
            if let Some(tok) = ctx.single(node, "seconds") {
                t.warmup = ctx
                    .timer_in(tok, Micros(0), max_timer(), "warmup")
                    .or(t.warmup);
            }
        }
        "delay_loop" => {
            if let Some(tok) = ctx.single(node, "seconds") {
                t.delay_loop = ctx
                    .timer_in(tok, Micros(1), max_timer(), "delay_loop")
                    .or(t.delay_loop);
            }
        }
        _ => return false,
    }
    true
}

/// `connect_timeout`, accepted by services, real servers and connecting checkers.
pub(super) fn connect_timeout(node: &Node, ctx: &mut Ctx<'_>) -> Option<Micros> {
    let tok = ctx.single(node, "seconds")?;
    ctx.timer_in(
        tok,
        Micros(1),
        Micros(u64::from(u32::MAX)),
        "connect_timeout",
    )
}

/// A checker block, or `None` (reported) when `node` is not one or is unusable.
pub(super) fn checker(node: &Node, ctx: &mut Ctx<'_>) -> Option<CheckerDraft> {
    let kind = match node.word() {
        "TCP_CHECK" => CheckerKind::Tcp,
        "PING_CHECK" => CheckerKind::Ping,
        "HTTP_GET" => CheckerKind::Http(HttpCheck::default()),
        "SSL_GET" => CheckerKind::Ssl(HttpCheck::default()),
        "MISC_CHECK" => CheckerKind::Misc(MiscCheck {
            path: Script {
                argv: Vec::new(),
                user: None,
                group: None,
            },
            timeout: Micros(0),
            dynamic: false,
        }),
        "DNS_CHECK" => CheckerKind::Dns(DnsCheck {
            record_type: DnsType::Soa,
            name: ".".to_string(),
        }),
        "UDP_CHECK" => CheckerKind::Udp(UdpCheck::default()),
        "FILE_CHECK" => CheckerKind::File(FileCheck {
            track_file: String::new(),
            weight: None,
            reverse: false,
        }),
        "SMTP_CHECK" => {
            ctx.not_acted_on(
                node,
                "SMTP health checks are not implemented; the real server has no checker from it",
            );
            return None;
        }
        "BFD_CHECK" => {
            ctx.not_acted_on(
                node,
                "BFD is not implemented; the real server has no checker from it",
            );
            return None;
        }
        _ => {
            ctx.unknown_keyword(node, "real_server");
            return None;
        }
    };
    ctx.extra_tokens(node, 0);
    let mut d = CheckerDraft {
        connection: kind.has_connection().then_some(Connection {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Micros(0),
        }),
        kind,
        timing: TimingDraft::default(),
        misc_timeout: None,
        origin: Origin::at(node.span()),
    };
    for child in ctx.block(node) {
        if d.kind.has_timing() && common(child, ctx, &mut d) {
            continue;
        }
        let within = d.kind.keyword();
        match &mut d.kind {
            CheckerKind::Tcp | CheckerKind::Ping => ctx.unknown_keyword(child, within),
            CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
                http_keyword(child, ctx, h, &mut d.timing, within)
            }
            CheckerKind::Misc(m) => match child.word() {
                "misc_path" => {
                    if let Some(s) = ctx.script(child) {
                        if s.user.is_some() {
                            ctx.warning(
                                child.span(),
                                "words after the misc_path command are ignored; quote the whole command and set the user with 'user NAME [GROUP]'",
                            );
                        }
                        let (user, group) = (m.path.user.take(), m.path.group.take());
                        m.path = Script {
                            argv: s.argv,
                            user,
                            group,
                        };
                    }
                }
                "misc_timeout" => {
                    if let Some(t) = ctx.single(child, "whole seconds")
                        && let Some(v) =
                            ctx.uint_in(t, 0, u64::from(u32::MAX / 1_000_000), "misc_timeout")
                    {
                        d.misc_timeout = (v > 0).then(|| Micros::from_secs(v));
                    }
                }
                "misc_dynamic" => {
                    ctx.no_block(child);
                    ctx.extra_tokens(child, 0);
                    m.dynamic = true;
                }
                "user" => {
                    ctx.no_block(child);
                    ctx.extra_tokens(child, 2);
                    if let Some(u) = ctx.arg(child, 0, "a user name") {
                        m.path.user = Some(u.text.clone());
                        m.path.group = child.args.get(1).map(|g| g.text.clone());
                    }
                }
                _ => ctx.unknown_keyword(child, within),
            },
            CheckerKind::Dns(dns) => match child.word() {
                "type" => {
                    if let Some(t) = ctx.single(child, "a record type") {
                        match DnsType::from_keyword(&t.text) {
                            Some(ty) => dns.record_type = ty,
                            None => ctx.error(
                                t.span,
                                format!(
                                    "unknown DNS_CHECK type '{}': it must be one of A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY",
                                    t.text
                                ),
                            ),
                        }
                    }
                }
                "name" => {
                    if let Some(t) = ctx.single(child, "a domain name") {
                        let n = &t.text;
                        let empty_label = (n.starts_with('.') && n.len() > 1) || n.contains("..");
                        if empty_label || n.is_empty() {
                            ctx.error(t.span, format!("DNS_CHECK name '{n}' has an empty label"));
                        } else {
                            dns.name = n.clone();
                        }
                    }
                }
                _ => ctx.unknown_keyword(child, within),
            },
            CheckerKind::Udp(u) => udp_keyword(child, ctx, u, within),
            CheckerKind::File(f) => match child.word() {
                "track_file" => {
                    if let Some(t) = ctx.single(child, "the name of a track_file") {
                        f.track_file = t.text.clone();
                    }
                }
                "weight" => {
                    ctx.no_block(child);
                    ctx.extra_tokens(child, 2);
                    let Some(t) = ctx.arg(child, 0, "a weight") else {
                        continue;
                    };
                    let lim = i64::from(MAX_WEIGHT);
                    let Some(w) = ctx.int_in(t, -lim, lim, "FILE_CHECK weight") else {
                        continue;
                    };
                    let reverse = match child.args.get(1).map(|t| (t, t.text.as_str())) {
                        None | Some((_, "noreverse")) => false,
                        Some((_, "reverse")) => true,
                        Some((t, other)) => {
                            ctx.error(
                                t.span,
                                format!("unknown weight option '{other}': it must be reverse or noreverse"),
                            );
                            continue;
                        }
                    };
                    f.weight = Some(w as i32);
                    f.reverse = reverse;
                }
                _ => ctx.unknown_keyword(child, within),
            },
        }
    }
    if let CheckerKind::Udp(u) = &d.kind
        && u.min_reply_length > u.max_reply_length
    {
        ctx.warning(
            node.span(),
            format!(
                "min_reply_length {} > max_reply_length {}: the check will always fail",
                u.min_reply_length, u.max_reply_length
            ),
        );
    }
    let complete = match &d.kind {
        CheckerKind::Http(h) | CheckerKind::Ssl(h) if h.urls.is_empty() => {
            Err("needs at least one 'url { path … }' block")
        }
        CheckerKind::Misc(m) if m.path.argv.is_empty() => Err("needs 'misc_path \"command\"'"),
        CheckerKind::File(f) if f.track_file.is_empty() => Err("needs 'track_file NAME'"),
        _ => Ok(()),
    };
    if let Err(what) = complete {
        ctx.error(
            node.span(),
            format!("{} {what}; keepalived drops the checker", node.word()),
        );
        return None;
    }
    Some(d)
}

/// Connection and timing keywords common to checkers (`check_api.c`).
fn common(node: &Node, ctx: &mut Ctx<'_>, d: &mut CheckerDraft) -> bool {
    if timing_keyword(node, ctx, &mut d.timing, true) {
        return true;
    }
    match node.word() {
        "alpha" => d.timing.alpha = Some(ctx.flag(node)),
        "log_all_failures" => d.timing.log_all_failures = Some(ctx.flag(node)),
        _ => {
            let Some(c) = &mut d.connection else {
                return false;
            };
            match node.word() {
                "connect_ip" => {
                    if let Some(t) = ctx.single(node, "an address") {
                        c.connect_ip = ctx.ip(t, "connect_ip").or(c.connect_ip);
                    }
                }
                "bindto" => {
                    if let Some(t) = ctx.single(node, "an address") {
                        c.bindto = ctx.ip(t, "bindto").or(c.bindto);
                    }
                }
                "connect_port" | "bind_port" => {
                    if let Some(t) = ctx.single(node, "a port")
                        && let Some(p) = ctx.uint_in(t, 1, 65535, node.word())
                    {
                        if node.word() == "connect_port" {
                            c.connect_port = Some(p as u16);
                        } else {
                            c.bind_port = Some(p as u16);
                        }
                    }
                }
                "bind_if" => {
                    if let Some(t) = ctx.single(node, "an interface name") {
                        if t.text.len() > 15 {
                            ctx.error(
                                t.span,
                                format!("interface name '{}' is longer than 15 characters", t.text),
                            );
                        } else {
                            c.bind_if = Some(t.text.clone());
                        }
                    }
                }
                "fwmark" => {
                    if let Some(t) = ctx.single(node, "a firewall mark")
                        && let Some(v) = ctx.uint_in(t, 0, u64::from(u32::MAX), "checker fwmark")
                    {
                        c.fwmark = Some(v as u32);
                    }
                }
                "connect_timeout" => {
                    if let Some(v) = connect_timeout(node, ctx) {
                        d.timing.connect_timeout = Some(v);
                    }
                }
                _ => return false,
            }
            if let (Some(a), Some(b)) = (c.connect_ip, c.bindto)
                && a.is_ipv4() != b.is_ipv4()
            {
                ctx.error(
                    node.span(),
                    format!("connect_ip {a} and bindto {b} are of different address families"),
                );
            }
        }
    }
    true
}

fn http_keyword(
    node: &Node,
    ctx: &mut Ctx<'_>,
    h: &mut HttpCheck,
    timing: &mut TimingDraft,
    within: &str,
) {
    match node.word() {
        "url" => {
            if let Some(u) = url(node, ctx) {
                h.urls.push(u);
            }
        }
        "nb_get_retry" => {
            ctx.warning(
                node.span(),
                "'nb_get_retry' is deprecated; it is read as 'retry' (write 'retry' instead)",
            );
            if let Some(t) = ctx.single(node, "a number of retries")
                && let Some(v) = ctx.uint_in(t, 0, u64::from(u32::MAX), "nb_get_retry")
            {
                timing.retry = Some(v as u32);
            }
        }
        "virtualhost" => {
            if let Some(t) = ctx.single(node, "a host name") {
                h.virtualhost = Some(t.text.clone());
            }
        }
        "http_protocol" => {
            if let Some(t) = ctx.single(node, "1.0, 1.0C or 1.1") {
                match t.text.as_str() {
                    "1.0" => h.http_protocol = HttpProtocol::V1_0,
                    "1.0C" | "1.0c" => h.http_protocol = HttpProtocol::V1_0C,
                    "1.1" => h.http_protocol = HttpProtocol::V1_1,
                    other => ctx.error(
                        t.span,
                        format!("unknown http_protocol '{other}': it must be 1.0, 1.0C or 1.1"),
                    ),
                }
            }
        }
        "enable_sni" => h.enable_sni = ctx.flag(node),
        "sni_name" => {
            ctx.no_block(node);
            ctx.extra_tokens(node, 1);
            if let Some(t) = node.args.first() {
                h.sni_name = Some(t.text.clone());
            }
            h.enable_sni = true;
        }
        "fast_recovery" => h.fast_recovery = ctx.flag(node),
        "tls_compliant" => h.tls_compliant = ctx.flag(node),
        _ => ctx.unknown_keyword(node, within),
    }
}

fn url(node: &Node, ctx: &mut Ctx<'_>) -> Option<Url> {
    ctx.extra_tokens(node, 0);
    let mut path = None;
    let mut digest: Option<String> = None;
    let mut codes: Vec<StatusRange> = Vec::new();
    let mut virtualhost = None;
    let mut tls_compliant = false;
    let mut pattern: Option<String> = None;
    let mut regex = UrlRegex {
        pattern: String::new(),
        no_match: false,
        options: Vec::new(),
        min_offset: None,
        max_offset: None,
    };
    let mut regex_extras = None;
    for child in ctx.block(node) {
        match child.word() {
            "path" => {
                path = ctx
                    .single(child, "a URL path")
                    .map(|t| t.text.clone())
                    .or(path)
            }
            "digest" => {
                let Some(t) = ctx.single(child, "an MD5 digest (32 hex digits)") else {
                    continue;
                };
                if digest.is_some() {
                    ctx.error(t.span, "a url has one digest; this second one is ignored");
                } else if t.text.len() == 32 && t.text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    digest = Some(t.text.to_ascii_lowercase());
                } else {
                    ctx.error(
                        t.span,
                        format!(
                            "digest '{}' is not an MD5 digest: it must be 32 hexadecimal digits (genhash prints it)",
                            t.text
                        ),
                    );
                }
            }
            "status_code" => {
                ctx.no_block(child);
                if child.args.is_empty() {
                    ctx.error(
                        child.span(),
                        "'status_code' needs codes or ranges (e.g. 200-299)",
                    );
                }
                for t in &child.args {
                    match status_range(&t.text) {
                        Some(r) => codes.push(r),
                        None => ctx.error(
                            t.span,
                            format!(
                                "status_code '{}' is not a code or range within 100-599 (e.g. 200 or 200-299, first ≤ last)",
                                t.text
                            ),
                        ),
                    }
                }
            }
            "virtualhost" => {
                virtualhost = ctx
                    .single(child, "a host name")
                    .map(|t| t.text.clone())
                    .or(virtualhost)
            }
            "tls_compliant" => tls_compliant = ctx.flag(child),
            "regex" => {
                ctx.no_block(child);
                match split_quoted(&child.rest, true) {
                    Ok(w) if w.len() == 1 => pattern = w.into_iter().next(),
                    Ok(_) => ctx.error(
                        child.span(),
                        "'regex' needs exactly one pattern (quote it if it has blanks)",
                    ),
                    Err(e) => ctx.error(child.span(), format!("'regex': {e}")),
                }
            }
            "regex_no_match" => {
                ctx.no_block(child);
                ctx.extra_tokens(child, 0);
                regex.no_match = true;
                regex_extras.get_or_insert(child.span());
            }
            "regex_options" => {
                ctx.no_block(child);
                regex
                    .options
                    .extend(child.args.iter().map(|t| t.text.clone()));
                regex_extras.get_or_insert(child.span());
            }
            "regex_min_offset" | "regex_max_offset" => {
                if let Some(t) = ctx.single(child, "a byte offset")
                    && let Some(v) = ctx.uint_in(t, 0, u64::from(u32::MAX), child.word())
                {
                    if child.word() == "regex_min_offset" {
                        regex.min_offset = Some(v);
                    } else {
                        regex.max_offset = Some(v);
                    }
                }
                regex_extras.get_or_insert(child.span());
            }
            "regex_stack" => {
                ctx.not_acted_on(child, "the PCRE2 JIT stack size is managed by flotilla")
            }
            _ => ctx.unknown_keyword(child, "url"),
        }
    }
    let Some(path) = path else {
        ctx.error(
            node.span(),
            "url needs 'path'; keepalived drops a url without one",
        );
        return None;
    };
    let regex = match pattern {
        Some(p) => Some(UrlRegex {
            pattern: p,
            ..regex
        }),
        None => {
            if let Some(span) = regex_extras {
                ctx.warning(
                    span,
                    "regex settings without 'regex' are ignored, as keepalived does",
                );
            }
            None
        }
    };
    if let Some(r) = &regex
        && let (Some(lo), Some(hi)) = (r.min_offset, r.max_offset)
        && lo > hi
    {
        ctx.error(
            node.span(),
            format!("regex_min_offset {lo} is beyond regex_max_offset {hi}"),
        );
    }
    let status_codes = if codes.is_empty() {
        vec![StatusRange::DEFAULT]
    } else {
        StatusRange::normalise(codes)
    };
    Some(Url {
        path,
        digest,
        status_codes,
        virtualhost,
        regex,
        tls_compliant,
        origin: Origin::at(node.span()),
    })
}

/// `NNN` or `NNN-MMM` within 100–599.
fn status_range(s: &str) -> Option<StatusRange> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let (first, last): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    let ok = |c: u16| (100..=599).contains(&c);
    (ok(first) && ok(last) && first <= last).then_some(StatusRange { first, last })
}

fn udp_keyword(node: &Node, ctx: &mut Ctx<'_>, u: &mut UdpCheck, within: &str) {
    match node.word() {
        "payload" | "require_reply" => {
            ctx.no_block(node);
            let words: Vec<&str> = node.args.iter().map(|t| t.text.as_str()).collect();
            let is_payload = node.word() == "payload";
            if words.is_empty() {
                if is_payload {
                    ctx.error(node.span(), "'payload' needs hex bytes");
                } else {
                    u.require_reply = true;
                }
                return;
            }
            match hex_text(&words, !is_payload) {
                Some(hex) if is_payload => u.payload = hex_bytes(&hex).unwrap_or_default(),
                Some(hex) => {
                    u.require_reply = true;
                    u.reply = Some(hex);
                }
                None => ctx.error(
                    node.span(),
                    format!(
                        "'{}' must be an even number of hex digits{}",
                        node.word(),
                        if is_payload {
                            ""
                        } else {
                            " ('?' matches any nibble)"
                        }
                    ),
                ),
            }
        }
        "min_reply_length" | "max_reply_length" => {
            if let Some(t) = ctx.single(node, "a length in bytes")
                && let Some(v) = ctx.uint_in(t, 0, u64::from(u16::MAX), node.word())
            {
                if node.word() == "min_reply_length" {
                    u.min_reply_length = v as u16;
                } else {
                    u.max_reply_length = v as u16;
                }
            }
        }
        _ => ctx.unknown_keyword(node, within),
    }
}
