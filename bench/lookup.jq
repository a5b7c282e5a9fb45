# Builds the lookup object used by baseline.jq from samples/happyfox-schema.json.
{
  category: (.categories | map(select(.public)) | map({key: .name, value: .id}) | from_entries),
  priority: (.priorities | map({key: .name, value: .id}) | from_entries),
  staff: (.staff | map(select(.active)) | map({key: .email, value: .id}) | from_entries),
  fields: (.ticket_custom_fields | map({key: .name, value: {
            id: .id,
            choices: ((.choices // []) | map({key: .text, value: .id}) | from_entries),
            categories: (.categories | map({key: (.category | tostring), value: true}) | from_entries)}})
          | from_entries),
  group: {"360011111101": "Support", "360011111102": "Billing", "360011111103": "Sales", "360011111104": "Internal IT"},
  prio: {low: "Low", normal: "Medium", high: "High", urgent: "Critical"},
  product: {widget_pro: "Widget Pro", widget_lite: "Widget Lite", gadget: "Gadget", other: "Other"},
  region: {emea: "EMEA", apac: "APAC", americas: "Americas"},
  module: {mod_billing: "Billing", mod_reports: "Reports", mod_api: "API", mod_mobile_app: "Mobile app",
           mod_integrations: "Integrations"}
}
