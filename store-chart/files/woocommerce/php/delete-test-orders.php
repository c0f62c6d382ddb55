<?php
/**
 * `wp eval-file` (scheduled job): delete helm test's checkout orders, so they never
 * count in the shop's orders or analytics. An order is one only when both marks match:
 * the reserved .invalid billing e-mail and the customer note helm test sets
 * (BILLING_EMAIL, ORDER_NOTE). Deleted for good, like an order trashed and emptied.
 */
$email = (string) getenv( 'BILLING_EMAIL' );
$note  = (string) getenv( 'ORDER_NOTE' );
if ( $email === '' || $note === '' || ! function_exists( 'wc_get_orders' ) ) {
	return;
}
$deleted = 0;
foreach ( wc_get_orders( array( 'billing_email' => $email, 'limit' => 100, 'type' => 'shop_order' ) ) as $order ) {
	if ( $order->get_billing_email() === $email && $order->get_customer_note() === $note ) {
		$order->delete( true );
		++$deleted;
	}
}
if ( $deleted ) {
	echo "[cron] deleted $deleted checkout test order(s)\n";
}
