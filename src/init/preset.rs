//! The helpdesks `init` knows: for each, the shipped mapping whose structure the draft
//! starts from, where its custom fields sit in a record, and the export file that defines
//! them by name. A new preset is one more entry here and its mapping in `mappings/`.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::values::SourceFields;

/// A source system named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Preset {
    pub name: &'static str,
    /// The shipped mapping (`mappings/<name>.yaml`), compiled into the binary.
    pub mapping: &'static str,
    pub fields: SourceFields,
    /// The export file with the custom field definitions, and how to read it.
    pub definitions: Option<Definitions>,
    /// The export file naming the groups tickets carry by id, for the category map.
    pub groups: Option<Definitions>,
}

/// A field-definitions file: `ticket_fields.json` in the export folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Definitions {
    pub file: &'static str,
    /// Dotted path of the list in the document (`None`: a top-level list).
    pub records: Option<&'static str>,
    /// The key a record's custom field is found by (Zendesk `id`, Freshdesk `name`).
    pub key: &'static str,
    /// The name the admin saw (Zendesk `title`, Freshdesk `label`).
    pub label: &'static str,
}

pub(crate) const PRESETS: &[Preset] = &[
    Preset {
        name: "zendesk",
        mapping: include_str!("../../mappings/zendesk.yaml"),
        fields: SourceFields::IdValueList,
        definitions: Some(Definitions {
            file: "ticket_fields.json",
            records: Some("ticket_fields"),
            key: "id",
            label: "title",
        }),
        groups: Some(Definitions {
            file: "groups.json",
            records: Some("groups"),
            key: "id",
            label: "name",
        }),
    },
    Preset {
        name: "freshdesk",
        mapping: include_str!("../../mappings/freshdesk.yaml"),
        fields: SourceFields::Object {
            at: "custom_fields",
            prefix: "",
        },
        definitions: Some(Definitions {
            file: "ticket_fields.json",
            records: None,
            key: "name",
            label: "label",
        }),
        groups: Some(Definitions {
            file: "groups.json",
            records: None,
            key: "id",
            label: "name",
        }),
    },
    Preset {
        // Custom fields sit in `cf` by API name (cf_order_value).
        name: "zoho-desk",
        mapping: include_str!("../../mappings/zoho-desk.yaml"),
        fields: SourceFields::Object {
            at: "cf",
            prefix: "",
        },
        definitions: None,
        groups: None,
    },
    Preset {
        name: "freshservice",
        mapping: include_str!("../../mappings/freshservice.yaml"),
        fields: SourceFields::Object {
            at: "custom_fields",
            prefix: "",
        },
        definitions: None,
        groups: Some(Definitions {
            file: "groups.json",
            records: Some("groups"),
            key: "id",
            label: "name",
        }),
    },
    Preset {
        // Custom fields sit in `fields` as customfield_<n>, named in fields.json.
        name: "jira",
        mapping: include_str!("../../mappings/jira-service-management.yaml"),
        fields: SourceFields::Object {
            at: "fields",
            prefix: "customfield_",
        },
        definitions: Some(Definitions {
            // GET /rest/api/3/field: every field with its id and name.
            file: "fields.json",
            records: None,
            key: "id",
            label: "name",
        }),
        groups: None,
    },
    Preset {
        // Custom fields are the incident's own u_ columns.
        name: "servicenow",
        mapping: include_str!("../../mappings/servicenow.yaml"),
        fields: SourceFields::Object {
            at: "",
            prefix: "u_",
        },
        definitions: None,
        groups: None,
    },
    Preset {
        // Custom fields are `customFields[]` by name.
        name: "help-scout",
        mapping: include_str!("../../mappings/help-scout.yaml"),
        fields: SourceFields::NameList { at: "customFields" },
        definitions: None,
        groups: None,
    },
    Preset {
        // Custom fields are `custom_attributes` by name.
        name: "intercom",
        mapping: include_str!("../../mappings/intercom.yaml"),
        fields: SourceFields::Object {
            at: "custom_attributes",
            prefix: "",
        },
        definitions: None,
        groups: None,
    },
    Preset {
        name: "csv",
        mapping: include_str!("../../mappings/generic-csv.yaml"),
        fields: SourceFields::Columns,
        definitions: None,
        groups: None,
    },
];

pub(crate) fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

pub(crate) fn supported() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One field definition: its admin-facing name and, for drop-downs, option value → name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Definition {
    pub label: String,
    pub options: IndexMap<String, String>,
}

/// Field definitions by key.
pub(crate) type DefinitionMap = IndexMap<String, Definition>;

/// The definitions in the export folder, by key; empty when the file is absent. Records
/// that cannot be read are counted in the second value.
pub(crate) fn definitions(
    defs: &Definitions,
    root: &Path,
) -> Result<Option<(DefinitionMap, u64)>, crate::source::SourceError> {
    let path = root.join(defs.file);
    if !path.is_file() {
        return Ok(None);
    }
    let opts = crate::source::ReadOptions {
        records: defs.records.map(str::to_string),
        ..Default::default()
    };
    let mut out = IndexMap::new();
    let mut unreadable = 0;
    for item in crate::source::read(&path, &opts)? {
        let Ok(record) = item else {
            unreadable += 1;
            continue;
        };
        let v = &record.value;
        let (Some(key), Some(label)) = (
            v.get(defs.key).and_then(crate::source::key_string),
            v.get(defs.label).and_then(Value::as_str),
        ) else {
            unreadable += 1;
            continue;
        };
        let mut options = IndexMap::new();
        // Zendesk: custom_field_options [{name, value}]; Freshdesk: choices [labels].
        for o in v
            .get("custom_field_options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(val), Some(name)) = (
                o.get("value").and_then(Value::as_str),
                o.get("name").and_then(Value::as_str),
            ) {
                options.insert(val.to_string(), name.to_string());
            }
        }
        out.insert(
            key,
            Definition {
                label: label.to_string(),
                options,
            },
        );
    }
    Ok(Some((out, unreadable)))
}
