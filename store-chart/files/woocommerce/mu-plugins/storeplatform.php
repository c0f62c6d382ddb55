<?php
/**
 * Plugin Name: Store platform
 * Description: Mail goes through the platform's SMTP relay (mail.* values) or, with
 * mail off, is logged as not sent; every wp_mail failure is logged; WooCommerce's
 * queue runs from the store's scheduled job. Mounted read-only by store-chart.
 */

defined( 'ABSPATH' ) || exit;

/** One log line on stderr (the pod log), tagged so it can be found. */
function storeplatform_log( string $message ): void {
	error_log( '[storeplatform] ' . $message );
}

// Action Scheduler's async runner starts the queue with a loopback request, which
// cannot reach Apache from inside the pod: the scheduled job (CronJob) runs it.
add_filter( 'action_scheduler_allow_async_request_runner', '__return_false' );

if ( getenv( 'STOREPLATFORM_MAIL_ENABLED' ) !== '1' ) {
	// No relay: PHP's mail() has no MTA in this image and would fail anyway. Say what
	// was not sent (never to whom: addresses are customers' data).
	add_filter(
		'pre_wp_mail',
		function ( $result, $atts ) {
			$to = is_array( $atts['to'] ) ? $atts['to'] : explode( ',', (string) $atts['to'] );
			storeplatform_log( sprintf( 'mail not sent (mail.enabled is off): "%s" to %d recipient(s)', $atts['subject'] ?? '', count( array_filter( $to ) ) ) );
			return false;
		},
		10,
		2
	);
} else {
	add_action(
		'phpmailer_init',
		function ( $mailer ) {
			$encryption = (string) getenv( 'STOREPLATFORM_SMTP_ENCRYPTION' );
			$mailer->isSMTP();
			$mailer->Host        = (string) getenv( 'STOREPLATFORM_SMTP_HOST' );
			$mailer->Port        = (int) getenv( 'STOREPLATFORM_SMTP_PORT' );
			$mailer->SMTPSecure  = 'none' === $encryption ? '' : $encryption;
			$mailer->SMTPAutoTLS = 'none' !== $encryption;
			$mailer->Timeout     = 10;
			$dir                 = (string) getenv( 'STOREPLATFORM_SMTP_SECRET_DIR' );
			if ( '' !== $dir ) {
				$mailer->SMTPAuth = true;
				$mailer->Username = trim( (string) file_get_contents( "$dir/smtp-username" ) );
				$mailer->Password = rtrim( (string) file_get_contents( "$dir/smtp-password" ), "\r\n" );
			}
		}
	);
	foreach ( array( 'wp_mail_from' => 'STOREPLATFORM_MAIL_FROM', 'wp_mail_from_name' => 'STOREPLATFORM_MAIL_FROM_NAME' ) as $filter => $variable ) {
		$value = (string) getenv( $variable );
		if ( '' !== $value ) {
			add_filter( $filter, fn () => $value );
		}
	}
}

add_action(
	'wp_mail_failed',
	function ( $error ) {
		storeplatform_log( 'wp_mail failed: ' . $error->get_error_message() );
	}
);
