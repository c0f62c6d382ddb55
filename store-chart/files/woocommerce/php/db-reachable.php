<?php
/**
 * `wp eval-file --skip-wordpress`: exit 0 once MySQL accepts the WordPress account,
 * connecting the way WordPress does (host:port, user and the password file of the
 * WORDPRESS_* settings).
 */
mysqli_report( MYSQLI_REPORT_OFF );
$password  = rtrim( (string) file_get_contents( getenv( 'WORDPRESS_DB_PASSWORD_FILE' ) ), "\r\n" );
$host_port = array_pad( explode( ':', (string) getenv( 'WORDPRESS_DB_HOST' ), 2 ), 2, '3306' );
$db        = @mysqli_connect( $host_port[0], getenv( 'WORDPRESS_DB_USER' ), $password, getenv( 'WORDPRESS_DB_NAME' ), (int) $host_port[1] );
exit( $db ? 0 : 1 );
