<?php
/**
 * `wp eval-file`: can the store sell? Prints "ok" or "missing: <checks>".
 *
 * Always checked (what the platform owns): WooCommerce active with its database and
 * WordPress's database up to date, a checkout page, and the hidden checkout-probe
 * product (PROBE_SKU) that helm test buys. After the first set-up only
 * (STOREPLATFORM_CHECKS=first-boot), also what that set-up configured: the owner may
 * change any of it later, and an upgrade must not fail because they did.
 */
$checks = array(
	'WooCommerce active'        => class_exists( 'WooCommerce' ),
	'WordPress database current' => (int) get_option( 'db_version' ) === (int) $GLOBALS['wp_db_version'],
);
if ( class_exists( 'WooCommerce' ) ) {
	$probe                                 = wc_get_product( wc_get_product_id_by_sku( getenv( 'PROBE_SKU' ) ) );
	$checks['WooCommerce database current'] = get_option( 'woocommerce_db_version' ) === WC()->version;
	$checks['checkout page']                = wc_get_page_id( 'checkout' ) > 0;
	$checks['checkout probe purchasable']   = $probe && $probe->get_status() === 'publish'
		&& $probe->get_catalog_visibility() === 'hidden' && $probe->is_purchasable();
	if ( getenv( 'STOREPLATFORM_CHECKS' ) === 'first-boot' ) {
		$starter                                 = wc_get_product( wc_get_product_id_by_sku( getenv( 'PRODUCT_SKU' ) ) );
		$checks['coming soon off']               = get_option( 'woocommerce_coming_soon' ) === 'no';
		$checks['guest checkout on']             = get_option( 'woocommerce_enable_guest_checkout' ) === 'yes';
		$checks['cash on delivery on']           = ( get_option( 'woocommerce_cod_settings' )['enabled'] ?? '' ) === 'yes';
		$checks['pretty permalinks']             = (string) get_option( 'permalink_structure' ) !== '';
		$checks['shop page']                     = wc_get_page_id( 'shop' ) > 0;
		$checks['cart page']                     = wc_get_page_id( 'cart' ) > 0;
		$checks['storefront theme']              = get_stylesheet() === 'storefront';
		$checks['published product with a price'] = $starter && $starter->get_status() === 'publish'
			&& $starter->is_purchasable() && $starter->get_price() !== '';
	}
}
$failed = array_keys( array_filter( $checks, fn ( $ok ) => ! $ok ) );
echo $failed ? 'missing: ' . implode( ', ', $failed ) : 'ok';
