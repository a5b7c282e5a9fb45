//! The ticket create payload of one record: contact, subject and first message,
//! category, priority and assignee, tags and copies, dates, custom fields and the marker,
//! and the final state, each checked against the account as it is built.

use super::*;

impl Run<'_, '_> {
    pub(super) fn ticket(&mut self, source_id: &SourceId) -> Option<TicketPlan> {
        let plan = self.b.plan;
        let t = &plan.ticket;
        // Sized for a typical payload (contact, subject, body, ids, a dozen custom fields)
        // so that it does not grow step by step for every record.
        let mut p =
            TicketPayload::with_capacity(16 + t.custom_fields.len() + t.contact_fields.len());
        self.contact(&mut p);
        self.subject(&mut p);
        self.first_message(&mut p)?;
        let cat_name = self.string(&t.category).map(trimmed).unwrap_or_default();
        let category = self.category(&cat_name, &t.category.name).cloned();
        if let Some(c) = &category {
            p.insert("category".into(), Json::from(c.id));
        }
        self.priority(&mut p);
        self.assignee(&mut p);
        self.tags(&mut p);
        self.copies(&mut p);
        self.dates(&mut p);
        self.first_author(&mut p);
        self.visibility(&mut p);
        self.custom_fields(&mut p, category.as_ref().map(|c| c.id));
        self.marker_field(&mut p, source_id, category.as_ref());
        let final_state = self.final_state(&p, category.as_ref().map(|c| c.id));
        let conversation = match &plan.conversation {
            Some(conv) => self.conversation(conv),
            None => vec![],
        };
        let attachments = match &plan.ticket.attachments {
            Some(a) => {
                let ticket = self.ctx.value().clone();
                self.attachments(a, Ctx::Record(self.ctx), &ticket, "ticket.attachments")
            }
            None => vec![],
        };
        let mut conversation = conversation;
        self.strip_nul(&mut p, &mut conversation);
        let transcript = match plan.conversation.as_ref().map(|c| &c.history) {
            Some(History::Transcript { when: None }) => true,
            Some(History::Transcript { when: Some(w) }) => self
                .eval(w, Ctx::Record(self.ctx))
                .is_some_and(|v| v.is_true()),
            Some(History::Full) | None => false,
        };

        Some(TicketPlan {
            source_id: source_id.clone(),
            location: None,
            payload: p,
            final_state,
            conversation,
            transcript,
            attachments,
        })
    }

    /// Removes NUL bytes from every text the ticket sends (HappyFox stores text in
    /// databases that refuse or cut at them), with one warning counting them and naming
    /// the fields.
    fn strip_nul(&mut self, p: &mut TicketPayload, conversation: &mut [EntryPlan]) {
        fn strip(s: &mut String) -> usize {
            if memchr::memchr(0, s.as_bytes()).is_none() {
                return 0;
            }
            let before = s.len();
            s.retain(|c| c != '\0');
            before - s.len()
        }
        fn walk(v: &mut Json) -> usize {
            match v {
                Json::String(s) => strip(s),
                Json::Array(items) => items.iter_mut().map(walk).sum(),
                Json::Object(m) => m.values_mut().map(walk).sum(),
                _ => 0,
            }
        }
        let mut fields = vec![];
        let mut removed = 0;
        for (name, v) in p.iter_mut() {
            let n = walk(v);
            if n > 0 {
                removed += n;
                fields.push(name.to_string());
            }
        }
        for (i, e) in conversation.iter_mut().enumerate() {
            let n = strip(&mut e.html);
            if n > 0 {
                removed += n;
                fields.push(format!("conversation entry {}", i + 1));
            }
        }
        if removed > 0 {
            self.problems.push(Problem::warning(
                ProblemKind::NulBytes,
                fields[0].clone(),
                format!(
                    "{removed} NUL bytes removed (from {}); the rest of the text is sent",
                    fields.join(", ")
                ),
            ));
        }
    }

    /// The contact: email (required, checked), name (else the email's local part), phone.
    fn contact(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        let email = self
            .string(&t.contact_email)
            .map(trimmed)
            .unwrap_or_default();
        if email.is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::MissingRequired,
                &t.contact_email.name,
                "the contact email is empty; HappyFox needs name and email for a new contact",
            ));
        } else if email.to_ascii_lowercase().ends_with(".invalid") && is_email(&email) {
            self.problems.push(Problem::warning(
                ProblemKind::PlaceholderEmail,
                &t.contact_email.name,
                format!("no email in the export; the contact is created as {email:?}, which can never receive mail"),
            ));
        } else if !is_email(&email) {
            self.problems.push(Problem::error(
                ProblemKind::InvalidEmail,
                &t.contact_email.name,
                format!("{email:?} is not a valid email address"),
            ));
        }
        let name = self
            .opt_string(&t.contact_name)
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
        p.insert("name".into(), Json::from(name));
        p.insert("email".into(), Json::from(email));
        if let Some(phone) = self.opt_string(&t.contact_phone) {
            p.insert("phone".into(), Json::from(phone));
        }
    }

    /// The subject: required and at most [`MAX_SUBJECT_CHARS`].
    fn subject(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        let subject = self.string(&t.subject).map(trimmed).unwrap_or_default();
        if subject.is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::EmptySubject,
                &t.subject.name,
                "the subject is empty",
            ));
        } else if subject.chars().count() > MAX_SUBJECT_CHARS {
            self.problems.push(Problem::error(
                ProblemKind::Oversized,
                &t.subject.name,
                format!(
                    "the subject has {} characters; at most {MAX_SUBJECT_CHARS} are accepted",
                    subject.chars().count()
                ),
            ));
        }
        p.insert("subject".into(), Json::from(subject));
    }

    /// The first message as `html` or `text`; `None` when the mapping has neither (which
    /// compiling it rules out).
    fn first_message(&mut self, p: &mut TicketPayload) -> Option<()> {
        let t = &self.b.plan.ticket;
        let (body_key, body_field) = match (&t.html, &t.text) {
            (Some(h), _) => ("html", h),
            (None, Some(x)) => ("text", x),
            (None, None) => return None,
        };
        let body = self.string(body_field).unwrap_or_default();
        if body.trim().is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::EmptyBody,
                &body_field.name,
                "the first message is empty",
            ));
        } else if body.len() as u64 > crate::happyfox::MAX_REQUEST_BYTES {
            // Alone over what one request may carry: no create could ever take it.
            self.problems.push(Problem::error(
                ProblemKind::Oversized,
                &body_field.name,
                format!(
                    "the first message is {:.1} MB; HappyFox accepts at most 25 MB per request, so the ticket cannot be created: shorten it or move content into attachments",
                    body.len() as f64 / (1024.0 * 1024.0)
                ),
            ));
        } else if body.len() > MAX_BODY_BYTES {
            self.problems.push(Problem::warning(
                ProblemKind::Oversized,
                &body_field.name,
                format!(
                    "the first message is {} KB; large bodies slow bulk creates",
                    body.len() / 1024
                ),
            ));
        }
        p.insert(body_key.into(), Json::from(body));
        Some(())
    }

    /// `ticket.first_message`: when someone other than the contact wrote the first
    /// message, its header (naming them) goes above it; HappyFox shows it as the contact's.
    fn first_author(&mut self, p: &mut TicketPayload) {
        let Some(fm) = &self.b.plan.ticket.first_message else {
            return;
        };
        let author = self.string(&fm.author).map(trimmed).unwrap_or_default();
        let author_name = self
            .opt_string(&fm.author_name)
            .map(trimmed)
            .unwrap_or_default();
        let contact = p.get("email").and_then(Json::as_str).unwrap_or_default();
        if (author.is_empty() && author_name.is_empty())
            || (!author.is_empty() && author.eq_ignore_ascii_case(contact))
        {
            return;
        }
        let Some(h) = &fm.header else {
            return;
        };
        let created_at = p
            .get("created_at")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        let base = self.ctx.value().clone();
        let header = self.header(h, base, &author, &author_name, &created_at);
        if header.trim().is_empty() {
            return;
        }
        if let Some(Json::String(html)) = p.get_mut("html") {
            html.insert_str(0, &header);
        } else if let Some(Json::String(text)) = p.get_mut("text") {
            let line = crate::mapping::template::html_to_text(&header);
            text.insert_str(0, &format!("{}\n\n", line.trim()));
        }
    }

    /// The priority by name; unknown names are errors with a hint.
    fn priority(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        if let Some(name) = t.priority.as_ref().and_then(|f| {
            let s = self.string(f)?;
            Some((f.name.clone(), trimmed(s)))
        }) {
            let (field, name) = name;
            if !name.is_empty() {
                match self
                    .b
                    .names
                    .priorities
                    .get(&name)
                    .map(|i| &self.b.schema.priorities[i])
                {
                    Some(pr) => {
                        p.insert("priority".into(), Json::from(pr.id));
                    }
                    None => self.problems.push(unknown_name(
                        ProblemKind::UnknownPriority,
                        &field,
                        "priority",
                        &name,
                        self.b.schema.priorities.iter().map(|x| x.name.as_str()),
                    )),
                }
            }
        }
    }

    /// The assignee by email or name; an unknown or inactive agent leaves the ticket
    /// unassigned with a warning.
    fn assignee(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        if let Some(field) = &t.assignee
            && let Some(who) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self.b.staff(&who) {
                Some(s) if s.active => {
                    p.insert("assignee".into(), Json::from(s.id));
                }
                Some(s) => self.problems.push(Problem::warning(
                    ProblemKind::InactiveAssignee,
                    &field.name,
                    format!(
                        "agent {:?} is inactive in HappyFox; the ticket will be unassigned",
                        s.email
                    ),
                )),
                None => self.problems.push(Problem::warning(
                    ProblemKind::UnknownAssignee,
                    &field.name,
                    format!("{who:?} is not a HappyFox agent; the ticket will be unassigned"),
                )),
            }
        }
    }

    /// Tags, plus the marker when the marker is a tag.
    fn tags(&mut self, p: &mut TicketPayload) {
        let plan = self.b.plan;
        let t = &plan.ticket;
        let mut tags: Vec<String> = match &t.tags {
            Some(f) => self
                .list(f)
                .into_iter()
                .map(|s| s.replace(',', " "))
                .collect(),
            None => vec![],
        };
        if let Some(Marker::Tag(f)) = &plan.marker
            && let Some(tag) = self.string(f).map(trimmed).filter(|s| !s.is_empty())
        {
            tags.push(tag);
        }
        tags.dedup();
        if !tags.is_empty() {
            p.insert("tags".into(), Json::from(tags.join(",")));
        }
    }

    /// `cc` and `bcc`: invalid addresses are left out with a warning.
    fn copies(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        for (key, field) in [("cc", &t.cc), ("bcc", &t.bcc)] {
            let Some(field) = field else { continue };
            let (good, bad): (Vec<String>, Vec<String>) =
                self.list(field).into_iter().partition(|e| is_email(e));
            for e in bad {
                self.problems.push(Problem::warning(
                    ProblemKind::InvalidEmail,
                    &field.name,
                    format!("{e:?} is not a valid email address; left out"),
                ));
            }
            if !good.is_empty() {
                p.insert(key.into(), Json::from(good.join(", ")));
            }
        }
    }

    /// `created_at` (already converted by the `datetime` filter) and the due date.
    fn dates(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        if let Some(field) = &t.created_at
            && let Some(s) = self.string(field).map(trimmed)
        {
            if s.is_empty() {
                self.problems.push(Problem::warning(
                    ProblemKind::NoTime,
                    &field.name,
                    "no creation time in the export: HappyFox shows the time of the import",
                ));
            } else if is_created_at(&s) {
                p.insert("created_at".into(), Json::from(s));
            } else {
                self.problems.push(Problem::error(
                    ProblemKind::InvalidDate,
                    &field.name,
                    format!(
                        "{s:?} is not yyyy-mm-ddThh:mm:ss; convert it with the `datetime` filter"
                    ),
                ));
            }
        }
        if let Some(field) = &t.due_date
            && let Some(s) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self.date(&s) {
                Some(d) => {
                    p.insert("due_date".into(), Json::from(d));
                }
                None => self.problems.push(Problem::error(
                    ProblemKind::InvalidDate,
                    &field.name,
                    format!("cannot read {s:?} as a date"),
                )),
            }
        }
    }

    /// `visible_only_staff` from a boolean or a yes/no-like string.
    fn visibility(&mut self, p: &mut TicketPayload) {
        let t = &self.b.plan.ticket;
        if let Some(field) = &t.visible_only_staff {
            let ctx = Ctx::Record(self.ctx);
            if let Some(v) = self.eval(field, ctx) {
                let yes = match v.as_str() {
                    Some(s) => matches!(
                        s.trim().to_ascii_lowercase().as_str(),
                        "true" | "yes" | "1" | "y"
                    ),
                    None => v.is_true(),
                };
                if yes {
                    p.insert("visible_only_staff".into(), Json::from(true));
                }
            }
        }
    }

    /// Ticket and contact custom fields, each checked against its definition.
    fn custom_fields(&mut self, p: &mut TicketPayload, cat_id: Option<u64>) {
        let t = &self.b.plan.ticket;
        for (r, field) in &t.custom_fields {
            if let Some((key, value)) = self.ticket_field(r, field, cat_id) {
                p.insert(key.into(), value);
            }
        }
        for (r, field) in &t.contact_fields {
            if let Some((key, value)) = self.contact_field(r, field) {
                p.insert(key.into(), value);
            }
        }
    }

    /// The marker custom field, which must apply to the ticket's category: reconciliation
    /// searches for it, so a ticket without it could be created twice.
    fn marker_field(
        &mut self,
        p: &mut TicketPayload,
        source_id: &SourceId,
        category: Option<&Category>,
    ) {
        let plan = self.b.plan;
        let cat_id = category.map(|c| c.id);
        if let Some(Marker::CustomField { field: r, value }) = &plan.marker {
            let marker = match value {
                Some(f) => trimmed(self.string(f).unwrap_or_default()),
                None => source_id.to_string(),
            };
            if let (Some(id), Some(cat)) = (r.id, cat_id) {
                match self.b.schema.ticket_field(id) {
                    Some(def) if def.applies_to(cat) => {
                        p.insert(format!("t-cf-{id}").into(), Json::from(marker));
                    }
                    _ => self.problems.push(Problem::error(
                        ProblemKind::FieldNotInCategory,
                        "marker",
                        format!(
                            "the marker field {:?} does not apply to category {:?}; add the category to the field in HappyFox",
                            r.name,
                            category.as_ref().map(|c| c.name.as_str()).unwrap_or_default()
                        ),
                    )),
                }
            }
        }
    }

    /// The final status and fields, sent with the ticket's last post.
    fn final_state(&mut self, p: &TicketPayload, cat_id: Option<u64>) -> FinalState {
        let plan = self.b.plan;
        let mut final_state = FinalState::default();
        if let Some(field) = &plan.final_state.status
            && let Some(name) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self
                .b
                .names
                .statuses
                .get(&name)
                .map(|i| &self.b.schema.statuses[i])
            {
                Some(st) => {
                    final_state.status = Some(st.id);
                    final_state.completed = st.behavior == Behavior::Completed;
                }
                None => self.problems.push(unknown_name(
                    ProblemKind::UnknownStatus,
                    &field.name,
                    "status",
                    &name,
                    self.b.schema.statuses.iter().map(|x| x.name.as_str()),
                )),
            }
        }
        for (r, field) in &plan.final_state.custom_fields {
            if let Some((key, value)) = self.ticket_field(r, field, cat_id) {
                final_state.custom_fields.insert(key, value);
            }
        }
        self.compulsory_on_completion(p, &final_state, cat_id);
        final_state
    }

    /// Fields compulsory on completion must have a value when the final status is a
    /// completed one, or HappyFox refuses the final post.
    fn compulsory_on_completion(
        &mut self,
        p: &TicketPayload,
        final_state: &FinalState,
        cat_id: Option<u64>,
    ) {
        if final_state.completed
            && let Some(cat) = cat_id
        {
            for def in self
                .b
                .schema
                .ticket_custom_fields
                .iter()
                .filter(|f| f.compulsory_on_completed && f.applies_to(cat))
            {
                let key = format!("t-cf-{}", def.id);
                if !p.contains_key(&key) && !final_state.custom_fields.contains_key(&key) {
                    self.problems.push(Problem::error(
                            ProblemKind::CompulsoryOnCompletion,
                            format!("custom_fields.{}", def.name),
                            format!(
                                "{:?} must be filled before the ticket can be moved to a completed status; map it under `ticket.custom_fields` or `final.custom_fields`",
                                def.name
                            ),
                        ));
                }
            }
        }
    }
}
