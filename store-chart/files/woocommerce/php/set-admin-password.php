<?php
/**
 * `wp eval-file`: set the admin password from the Secret file, once. The marker option
 * keeps a password the owner changed later; the password never appears on a command
 * line or in the output.
 */
if ( get_option( 'storeplatform_admin_password_set' ) === 'yes' ) {
	return;
}
$dir  = getenv( 'SECRETS_DIR' );
$user = get_user_by( 'login', trim( (string) file_get_contents( "$dir/admin-user" ) ) );
if ( ! $user ) {
	fwrite( STDERR, "admin user missing\n" );
	exit( 1 );
}
wp_set_password( rtrim( (string) file_get_contents( "$dir/admin-password" ), "\r\n" ), $user->ID );
update_option( 'storeplatform_admin_password_set', 'yes', false );
echo "[setup] admin password set from the Secret\n";
