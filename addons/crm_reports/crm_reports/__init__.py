"""crm_reports: reports, charts, dashboards and scheduled exports over the datasets installed addons declare."""
