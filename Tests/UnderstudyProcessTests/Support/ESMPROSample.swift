/// The sample `stop.sh` of the ESMPRO/AutomaticRunningController guide (seed
/// `000_9d66882d046d6bd7.txt`, chapter 3), as printed there. Changed: only the `sleep` values
/// (30 s each), which the guide tells users to set for their system — here 1 s each. The text
/// extraction of the seed put a space before `#!` and spaces at line ends; they are left out
/// (the file the guide ships starts with `#! /bin/sh`).
///
/// It calls `/usr/local/AUTORC/amccmd -downrequest ShutdownOff|ShutdownReboot 127.0.0.1
/// <hostname -s> ESMACnet` for CLP_FACTOR=CLUSTERSHUTDOWN or SERVERSHUTDOWN, nothing else.
enum ESMPROSample {
    static let stopScript = #"""
        #! /bin/sh
        #***************************************
        #*               stop.sh
        #*
        #* sample for ESMPRO/AC
        #***************************************

        AC_IPADDR="127.0.0.1"
        AC_HOSTNAME=`hostname -s`
        AC_SECCODE="ESMACnet"   # “ “内をESMPRO/ACで設定している通信用認識コードに変更する
                # デフォルトは ESMACnet

        if [ "$CLP_FACTOR" = "CLUSTERSHUTDOWN" ]
        then
         echo "AC FACTOR CLUSTERSHUTDOWN"

         if [ "$CLP_LASTACTION" = "HALT" ]
         then

          echo "AC ACTION HALT"
         AC_OPT="ShutdownOff"

         elif [ "$CLP_LASTACTION" = "REBOOT" ]
         then

         echo "AC ACTION REBOOT"
         AC_OPT="ShutdownReboot"

         fi

         sleep 1s   # 業務用のグループの停止に必要な時間に変更する
         echo "AC EXEC COMMAND"
         logger -i -t CLUSTERPRO "AC EXEC COMMAND"
         /usr/local/AUTORC/amccmd -downrequest "$AC_OPT" "$AC_IPADDR" "$AC_HOSTNAME" "$AC_SECCODE"
         logger -i -t CLUSTERPRO "AC EXIT COMMAND"
         echo "AC EXIT COMMAND"
         sleep 1s   # 各サーバのESMPRO/ACが通信して確認し合うのに必要な時間に変更する

        elif [ "$CLP_FACTOR" = "SERVERSHUTDOWN" ]
        then
         echo "AC FACTOR SERVERSHUTDOWN"

         if [ "$CLP_LASTACTION" = "HALT" ]
         then

          echo "AC ACTION HALT"
         AC_OPT="ShutdownOff"

         elif [ "$CLP_LASTACTION" = "REBOOT" ]
         then

         echo "AC ACTION REBOOT"
         AC_OPT="ShutdownReboot"

         fi

         sleep 1s   # 業務用のグループの停止に必要な時間に変更する
         echo "AC EXEC COMMAND"
         logger -i -t CLUSTERPRO "AC EXEC COMMAND"
         /usr/local/AUTORC/amccmd -downrequest "$AC_OPT" "$AC_IPADDR" "$AC_HOSTNAME" "$AC_SECCODE"
         logger -i -t CLUSTERPRO "AC EXIT COMMAND"
         echo "AC EXIT COMMAND"
         sleep 1s   # 各サーバのESMPRO/ACが通信して確認し合うのに必要な時間に変更する

        fi
        echo "AC SCRIPT EXIT"
        exit 0

        """#
}
