//! The later conversation of one record: which entries, their kind, who posts them, the
//! header that keeps the original author and time, and their files.

use super::*;

impl Run<'_, '_> {
    pub(super) fn conversation(&mut self, conv: &ConversationPlan) -> Vec<EntryPlan> {
        let ctx = Ctx::Record(self.ctx);
        let Some(entries) = self.eval(&conv.entries, ctx) else {
            return vec![];
        };
        let Ok(iter) = entries.try_iter() else {
            self.problems.push(Problem::error(
                ProblemKind::InvalidConversation,
                &conv.entries.name,
                "does not give a list of entries",
            ));
            return vec![];
        };
        let fallback = conv
            .fallback_agent
            .as_deref()
            .and_then(|f| self.b.staff(f))
            .map(|s| s.id);
        let mut out = vec![];
        for (i, entry) in iter.enumerate() {
            if i == 0 && conv.skip_first {
                continue;
            }
            let extra = vec![
                ("ticket".to_string(), self.ctx.value().clone()),
                ("position".to_string(), Value::from(i)),
            ];
            let ectx =
                Value::from_dyn_object(RecordCtx::with_extra(entry, self.b.sides.clone(), extra));
            if let Some(keep) = &conv.keep_if {
                match self.eval(keep, Ctx::Value(&ectx)) {
                    Some(v) if !v.is_true() => continue,
                    None => continue,
                    _ => {}
                }
            }
            let at = format!("{} #{}", conv.entries.name, i + 1);
            let kind_s = self
                .string_in(&conv.kind, Ctx::Value(&ectx))
                .unwrap_or_default();
            let Some(kind) = EntryKind::parse(&kind_s) else {
                self.problems.push(Problem::error(
                    ProblemKind::InvalidConversation,
                    &at,
                    format!("kind {kind_s:?} must be staff_reply, private_note or contact_reply"),
                ));
                continue;
            };
            let author = self
                .string_in(&conv.author, Ctx::Value(&ectx))
                .map(trimmed)
                .unwrap_or_default();
            let author_name = conv
                .author_name
                .as_ref()
                .and_then(|f| self.string_in(f, Ctx::Value(&ectx)))
                .unwrap_or_default();
            let created_at = conv
                .created_at
                .as_ref()
                .and_then(|f| self.string_in(f, Ctx::Value(&ectx)))
                .unwrap_or_default();
            let body = match (&conv.html, &conv.text) {
                (Some(h), _) => self.string_in(h, Ctx::Value(&ectx)).unwrap_or_default(),
                (None, Some(t)) => crate::mapping::template::text_to_html(
                    &self.string_in(t, Ctx::Value(&ectx)).unwrap_or_default(),
                ),
                (None, None) => String::new(),
            };
            if body.trim().is_empty() {
                self.problems.push(Problem::warning(
                    ProblemKind::InvalidConversation,
                    &at,
                    "empty entry; it will not be posted",
                ));
                continue;
            }
            let (staff, fell_back) = match kind {
                EntryKind::ContactReply => {
                    if !is_email(&author) {
                        self.problems.push(Problem::warning(
                            ProblemKind::UnknownAuthor,
                            &at,
                            format!("contact reply author {author:?} has no valid email; it will be posted as the ticket's contact"),
                        ));
                        (None, true)
                    } else {
                        (None, false)
                    }
                }
                _ => match self.b.staff(&author) {
                    Some(s) if s.active => (Some(s.id), false),
                    other => {
                        let why = if other.is_some() {
                            "is inactive in HappyFox"
                        } else {
                            "is not a HappyFox agent"
                        };
                        match fallback {
                            Some(f) => {
                                self.problems.push(Problem::warning(
                                    ProblemKind::UnknownAuthor,
                                    &at,
                                    format!(
                                        "author {author:?} {why}; posted as the fallback agent"
                                    ),
                                ));
                                (Some(f), true)
                            }
                            None => {
                                self.problems.push(Problem::error(
                                    ProblemKind::UnknownAuthor,
                                    &at,
                                    format!("author {author:?} {why} and the mapping has no `conversation.fallback_agent`"),
                                ));
                                continue;
                            }
                        }
                    }
                },
            };
            let header = match &conv.header {
                Some(h) => {
                    let mut hctx = vec![
                        ("author".to_string(), Value::from(author.clone())),
                        ("author_name".to_string(), Value::from(author_name.clone())),
                        ("created_at".to_string(), Value::from(created_at.clone())),
                    ];
                    hctx.push(("ticket".to_string(), self.ctx.value().clone()));
                    let hv = Value::from_dyn_object(RecordCtx::with_extra(
                        ectx.clone(),
                        self.b.sides.clone(),
                        hctx,
                    ));
                    self.string_in(h, Ctx::Value(&hv)).unwrap_or_default()
                }
                None => String::new(),
            };
            let attachments = match &conv.attachments {
                Some(a) => {
                    let ticket = self.ctx.value().clone();
                    self.attachments(a, Ctx::Value(&ectx), &ticket, &format!("{at} attachments"))
                }
                None => vec![],
            };
            out.push(EntryPlan {
                kind,
                author,
                staff,
                fell_back,
                html: format!("{header}{body}"),
                attachments,
            });
        }
        out
    }
}
