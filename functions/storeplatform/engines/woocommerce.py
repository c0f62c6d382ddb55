"""WooCommerce on WordPress + MySQL: store-chart/templates/woocommerce/."""

from __future__ import annotations

from storeplatform.engines.engine import Engine

ENGINE = Engine(
    name="woocommerce",
    chart_values={"engine": "woocommerce"},
    credential_keys=(
        "mysql-root-password", "mysql-password", "admin-password",
        "wordpress-auth-key", "wordpress-secure-auth-key", "wordpress-logged-in-key",
        "wordpress-nonce-key", "wordpress-auth-salt", "wordpress-secure-auth-salt",
        "wordpress-logged-in-salt", "wordpress-nonce-salt",
    ),
    # Ready means this Deployment is available (and the runner's `helm test` order went through).
    storefront_component="wordpress",
    storefront_title="WordPress",
    storefront_path="",
    admin_path="wp-admin/",
)
